//! Rules a well-typed [`Config`] must also meet.
//!
//! Serde already enforces types and enum words; the checks here are about ranges and
//! relations between keys. The first broken rule is reported, naming its key path.
//! Decisions worth knowing:
//! - `cluster.raft.max_voters` must be odd and 1..=5: an even count is rejected rather
//!   than silently rounded down.
//! - `cluster.raft.bootstrap_expect` may not exceed `max_voters`, since every node of
//!   the initial group becomes a voter.
//! - Port 0 ("pick one") is accepted only for `cluster.internode.bind_port` and in the
//!   HTTP listen addresses; the gossip port must be fixed so peers can find it.
//! - `election_timeout` shorter than `heartbeat_timeout` is rejected, not clamped.

use std::net::{IpAddr, SocketAddr};

use crate::addr::parse_host_port;
use crate::base64::decode_secret_key;
use crate::{ByteSize, Config, ConfigError, Duration, Origin, RaftConfig, SchedulerConfig};

/// A broken rule, before its origin is known.
#[derive(Debug)]
pub(crate) struct Issue {
    pub(crate) path: &'static str,
    message: String,
}

impl Issue {
    pub(crate) fn into_error(self, origin: Origin) -> ConfigError {
        ConfigError::Rule { origin, path: self.path.to_owned(), message: self.message }
    }
}

type Check = Result<(), Issue>;

/// Fails with `message()` at `path` unless `ok`.
fn ensure(ok: bool, path: &'static str, message: impl FnOnce() -> String) -> Check {
    if ok { Ok(()) } else { Err(Issue { path, message: message() }) }
}

fn positive(d: Duration, path: &'static str) -> Check {
    ensure(!d.is_zero(), path, || "must be longer than 0s".to_owned())
}

fn at_least_one(n: u64, path: &'static str) -> Check {
    ensure(n >= 1, path, || format!("must be at least 1 (got {n})"))
}

fn ip(text: &str, path: &'static str) -> Check {
    ensure(text.parse::<IpAddr>().is_ok(), path, || format!("{text:?} is not an IP address (e.g. 0.0.0.0 or ::)"))
}

fn socket_addr(text: &str, path: &'static str) -> Check {
    ensure(text.parse::<SocketAddr>().is_ok(), path, || {
        format!("{text:?} is not an ip:port address (e.g. 127.0.0.1:8080)")
    })
}

/// A node name goes into every PID (`{node@host|0x00001}`), so it must be a plain word.
fn node_name(name: &str, path: &'static str) -> Check {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.chars().any(|c| c.is_whitespace() || c.is_control() || "@|{}".contains(c));
    ensure(plain, path, || format!("{name:?} is not a usable node name (non-empty, no spaces or any of @ | {{ }})"))
}

fn not_blank(text: Option<&str>, path: &'static str) -> Check {
    match text {
        Some(t) => ensure(!t.trim().is_empty(), path, || "is empty; leave the key out (or null) instead".to_owned()),
        None => Ok(()),
    }
}

impl Config {
    /// Checks the rules that typing alone cannot express (ranges, odd voter counts,
    /// parseable addresses, the secret key's length). [`Config::load`] runs this
    /// already; call it on a config built or changed in code. The error's origin is
    /// [`Origin::Unknown`] here, since a bare config does not know where values came from.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().map_err(|issue| issue.into_error(Origin::Unknown))
    }

    pub(crate) fn check(&self) -> Check {
        self.check_node()?;
        self.check_scheduler()?;
        self.check_endpoints()?;
        self.check_membership()?;
        ip(&self.cluster.internode.bind_addr, "cluster.internode.bind_addr")?;
        let advertise = self.cluster.internode.advertise_addr.as_deref();
        not_blank(advertise, "cluster.internode.advertise_addr")?;
        self.check_raft()
    }

    fn check_node(&self) -> Check {
        if let Some(name) = &self.node.name {
            node_name(name, "node.name")?;
        }
        if let Some(name) = &self.cluster.name {
            node_name(name, "cluster.name")?;
            if let Some(node) = &self.node.name {
                ensure(name == node, "cluster.name", || {
                    format!("{name:?} differs from node.name {node:?}; a node has one name, set one of them")
                })?;
            }
        }
        ensure(!self.node.data_dir.trim().is_empty(), "node.data_dir", || "is empty".to_owned())
    }

    fn check_scheduler(&self) -> Check {
        let s = &self.scheduler;
        ensure(s.workers <= SchedulerConfig::MAX_WORKERS, "scheduler.workers", || {
            format!("must be at most {} (got {})", SchedulerConfig::MAX_WORKERS, s.workers)
        })?;
        let floor = ByteSize::mib(1);
        ensure(s.memory_limit >= floor, "scheduler.memory_limit", || {
            format!("must be at least {floor} (got {})", s.memory_limit)
        })?;
        let (lo, hi) = (Duration::from_micros(100), Duration::from_secs(10));
        ensure((lo..=hi).contains(&s.time_slice), "scheduler.time_slice", || {
            format!("must be between {lo} and {hi} (got {})", s.time_slice)
        })
    }

    fn check_endpoints(&self) -> Check {
        ensure(!self.logger.level.trim().is_empty(), "logger.level", || "is empty (use e.g. info)".to_owned())?;
        socket_addr(&self.admin.address, "admin.address")?;
        not_blank(self.admin.token.as_deref(), "admin.token")?;
        positive(self.admin.token_ttl, "admin.token_ttl")?;
        not_blank(self.cluster.license_file.as_deref(), "cluster.license_file")?;
        match &self.prometheus.address {
            Some(addr) => socket_addr(addr, "prometheus.address"),
            None => ensure(!self.prometheus.enabled, "prometheus.address", || {
                "is required when prometheus.enabled is true".to_owned()
            }),
        }
    }

    fn check_membership(&self) -> Check {
        let m = &self.cluster.membership;
        ip(&m.bind_addr, "cluster.membership.bind_addr")?;
        ensure(m.bind_port != 0, "cluster.membership.bind_port", || {
            "must be between 1 and 65535 (got 0; only cluster.internode.bind_port may be 0)".to_owned()
        })?;
        not_blank(m.advertise_addr.as_deref(), "cluster.membership.advertise_addr")?;
        for addr in m.join_addrs.iter() {
            parse_host_port(addr).map_err(|message| Issue { path: "cluster.membership.join_addrs", message })?;
        }
        if let Some(key) = &m.secret_key {
            decode_secret_key(key).map_err(|e| Issue {
                path: "cluster.membership.secret_key",
                message: format!("must be base64 of 32 bytes: {e}"),
            })?;
        }
        not_blank(m.secret_file.as_deref(), "cluster.membership.secret_file")?;
        for key in m.accept_secret_keys.iter() {
            decode_secret_key(key).map_err(|e| Issue {
                path: "cluster.membership.accept_secret_keys",
                message: format!("each key must be base64 of 32 bytes: {e}"),
            })?;
        }
        positive(m.gossip_interval, "cluster.membership.gossip_interval")?;
        positive(m.push_pull_interval, "cluster.membership.push_pull_interval")?;
        positive(m.probe_interval, "cluster.membership.probe_interval")?;
        positive(m.probe_timeout, "cluster.membership.probe_timeout")?;
        positive(m.isolation_grace, "cluster.membership.isolation_grace")?;
        ensure(m.probe_timeout < m.probe_interval, "cluster.membership.probe_timeout", || {
            format!("must be shorter than probe_interval ({}) (got {})", m.probe_interval, m.probe_timeout)
        })?;
        at_least_one(m.suspicion_mult.into(), "cluster.membership.suspicion_mult")
    }

    fn check_raft(&self) -> Check {
        let r = &self.cluster.raft;
        let max = RaftConfig::MAX_VOTERS;
        ensure((1..=max).contains(&r.max_voters), "cluster.raft.max_voters", || {
            format!("must be between 1 and {max} (got {})", r.max_voters)
        })?;
        ensure(r.max_voters % 2 == 1, "cluster.raft.max_voters", || {
            format!("must be odd so a majority is well defined (got {})", r.max_voters)
        })?;
        let max = RaftConfig::MAX_STANDBYS;
        ensure(r.max_standbys <= max, "cluster.raft.max_standbys", || {
            format!("must be at most {max} (got {})", r.max_standbys)
        })?;
        ensure(r.bootstrap_expect <= r.max_voters, "cluster.raft.bootstrap_expect", || {
            format!(
                "must not exceed max_voters ({}) (got {}); the initial nodes all become voters",
                r.max_voters, r.bootstrap_expect
            )
        })?;
        positive(r.reconcile_timeout, "cluster.raft.reconcile_timeout")?;
        positive(r.heartbeat_timeout, "cluster.raft.heartbeat_timeout")?;
        positive(r.commit_timeout, "cluster.raft.commit_timeout")?;
        ensure(r.election_timeout >= r.heartbeat_timeout, "cluster.raft.election_timeout", || {
            format!("must not be shorter than heartbeat_timeout ({}) (got {})", r.heartbeat_timeout, r.election_timeout)
        })?;
        at_least_one(r.snapshot_threshold, "cluster.raft.snapshot_threshold")?;
        positive(r.snapshot_interval, "cluster.raft.snapshot_interval")?;
        at_least_one(r.snapshot_retain.into(), "cluster.raft.snapshot_retain")?;
        at_least_one(r.max_append_entries.into(), "cluster.raft.max_append_entries")?;
        not_blank(r.data_dir.as_deref(), "cluster.raft.data_dir")?;
        positive(r.leader_probe_interval, "cluster.raft.leader_probe_interval")?;
        at_least_one(r.leader_probe_grace.into(), "cluster.raft.leader_probe_grace")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message of the rule `change` breaks, with its key path.
    fn broken(change: impl FnOnce(&mut Config)) -> String {
        let mut config = Config::default();
        change(&mut config);
        match config.validate() {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(broken(|_| {}), "ok");
    }

    #[test]
    fn voter_counts_must_be_odd_and_bounded() {
        assert_eq!(
            broken(|c| c.cluster.raft.max_voters = 4),
            "cluster.raft.max_voters: must be odd so a majority is well defined (got 4)"
        );
        assert!(broken(|c| c.cluster.raft.max_voters = 7).contains("between 1 and 5"));
        assert!(broken(|c| c.cluster.raft.max_voters = 0).contains("between 1 and 5"));
        assert_eq!(broken(|c| c.cluster.raft.max_voters = 3), "ok");
        assert!(broken(|c| c.cluster.raft.max_standbys = 5).contains("at most 4"));
        assert!(
            broken(|c| c.cluster.raft.bootstrap_expect = 6)
                .starts_with("cluster.raft.bootstrap_expect: must not exceed max_voters (5)")
        );
    }

    #[test]
    fn scheduler_limits() {
        assert!(broken(|c| c.scheduler.workers = 1025).starts_with("scheduler.workers:"));
        assert!(broken(|c| c.scheduler.memory_limit = ByteSize(1000)).contains("at least 1MiB (got 1KB)"));
        assert!(
            broken(|c| c.scheduler.time_slice = Duration::from_micros(50)).contains("between 100us and 10s (got 50us)")
        );
        assert!(broken(|c| c.scheduler.time_slice = Duration::from_secs(11)).contains("(got 11s)"));
    }

    #[test]
    fn addresses_ports_and_keys() {
        assert!(broken(|c| c.admin.address = "localhost".into()).starts_with("admin.address:"));
        assert_eq!(broken(|c| c.admin.address = "127.0.0.1:0".into()), "ok");
        assert!(broken(|c| c.cluster.membership.bind_port = 0).contains("only cluster.internode"));
        assert!(broken(|c| c.prometheus.enabled = true).contains("required when"));
        let bad_seed = broken(|c| {
            c.cluster.membership.join_addrs = crate::AddrList(vec!["a:1".into(), "b".into()]);
        });
        assert!(bad_seed.starts_with("cluster.membership.join_addrs: \"b\""), "{bad_seed}");
        let short_key = broken(|c| c.cluster.membership.secret_key = Some("Zm9v".into()));
        assert!(short_key.contains("32 bytes (got 3)"), "{short_key}");
        assert!(broken(|c| c.cluster.membership.bind_addr = "nope".into()).contains("IP address"));
    }

    #[test]
    fn names_and_timeouts() {
        assert!(broken(|c| c.node.name = Some("a b".into())).starts_with("node.name:"));
        let clash = broken(|c| {
            c.node.name = Some("n1".into());
            c.cluster.name = Some("n2".into());
        });
        assert!(clash.starts_with("cluster.name: \"n2\" differs"), "{clash}");
        let early = broken(|c| c.cluster.raft.election_timeout = Duration::from_secs(1));
        assert!(early.starts_with("cluster.raft.election_timeout:"), "{early}");
        let probe = broken(|c| c.cluster.membership.probe_timeout = Duration::from_secs(2));
        assert!(probe.starts_with("cluster.membership.probe_timeout:"), "{probe}");
    }
}
