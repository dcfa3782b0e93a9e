//! `logger:`, `admin:` and `prometheus:`: how the node reports on itself.

use serde::{Deserialize, Serialize};

use crate::duration::Duration;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogEncoding {
    /// Human-readable lines.
    #[default]
    Console,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The `logger:` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a mapping of logger settings")]
pub struct LoggerConfig {
    /// Output format.
    pub encoding: LogEncoding,
    /// Minimum level (`trace`, `debug`, `info`, `warn`, `error`), or a filter in
    /// `tracing` directive syntax such as `info,wippy_runtime=debug`.
    pub level: String,
}

impl Default for LoggerConfig {
    fn default() -> Self {
        LoggerConfig { encoding: LogEncoding::Console, level: "info".to_owned() }
    }
}

/// The `admin:` section: the HTTP server for health checks, metrics and the admin API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a mapping of admin settings")]
pub struct AdminConfig {
    /// Whether the server runs.
    pub enabled: bool,
    /// Listen address as `ip:port`; port 0 lets the OS pick one (the node logs it).
    pub address: String,
    /// A static bearer token with every scope (for scripts and Prometheus); when set
    /// it also guards `/readyz` and `/metrics`.
    pub token: Option<String>,
    /// How long the old secret keeps working after `credential rotate`.
    pub credential_grace: Duration,
    /// How long a token from `/v1/oauth/token` lasts.
    pub token_ttl: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            address: "127.0.0.1:8080".to_owned(),
            token: None,
            credential_grace: Duration::from_secs(24 * 3600),
            token_ttl: Duration::from_secs(15 * 60),
        }
    }
}

/// The `prometheus:` section: an optional extra listener that serves only `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a mapping of prometheus settings")]
pub struct PrometheusConfig {
    /// Whether the listener runs; needs `address`.
    pub enabled: bool,
    /// Listen address as `ip:port`. Required when `enabled` is true.
    pub address: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        assert_eq!(LoggerConfig::default().level, "info");
        assert_eq!(LoggerConfig::default().encoding, LogEncoding::Console);
        let admin = AdminConfig::default();
        assert!(admin.enabled);
        assert_eq!(admin.address, "127.0.0.1:8080");
        assert!(!PrometheusConfig::default().enabled);
    }
}
