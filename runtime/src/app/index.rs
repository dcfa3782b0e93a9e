//! The shape of an `_index.yaml` file. Unknown keys and kinds are errors, so
//! a typo stops start-up instead of being silently ignored.

use serde::Deserialize;
use serde::de::IgnoredAny;

/// One `_index.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Index {
    /// Format version (`"1.0"`).
    #[allow(dead_code)]
    pub(crate) version: Option<String>,
    /// Namespace of every entry in the file.
    pub(crate) namespace: String,
    /// The entries.
    #[serde(default)]
    pub(crate) entries: Vec<Entry>,
}

/// An entry, by kind. Fields named but not used by a single node (`meta`,
/// host `lifecycle`, cluster-only entries) are accepted and ignored.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub(crate) enum Entry {
    /// Where processes run.
    #[serde(rename = "process.host")]
    Host {
        name: String,
        #[serde(default)]
        meta: Option<IgnoredAny>,
        #[serde(default)]
        lifecycle: Option<IgnoredAny>,
    },
    /// A Lua process definition.
    #[serde(rename = "process.lua")]
    Lua {
        name: String,
        source: String,
        #[serde(default)]
        method: Option<String>,
        #[serde(default)]
        meta: Option<IgnoredAny>,
    },
    /// A supervised process started at boot.
    #[serde(rename = "process.service")]
    Service {
        name: String,
        process: String,
        host: String,
        #[serde(default)]
        input: Vec<serde_json::Value>,
        #[serde(default)]
        lifecycle: Option<Lifecycle>,
        #[serde(default)]
        meta: Option<IgnoredAny>,
    },
    /// A process-group scope (cluster feature).
    #[serde(rename = "pg.scope")]
    PgScope {
        name: String,
        /// How often nodes compare their group state (default 30s).
        #[serde(default)]
        anti_entropy_interval: Option<DurationText>,
        /// Distinct groups allowed in the scope (0: unlimited).
        #[serde(default)]
        max_groups: Option<usize>,
        /// Members allowed in one group, counting every join (0: unlimited).
        #[serde(default)]
        max_members_per_group: Option<usize>,
        /// Keys of other builds (timeouts, queue sizes) that this one
        /// has no use for.
        #[serde(flatten)]
        rest: std::collections::BTreeMap<String, IgnoredAny>,
    },
    /// A replicated KV store through Raft (cluster feature).
    #[serde(rename = "store.kv.raft")]
    KvRaft {
        name: String,
        namespace: String,
        #[serde(default)]
        meta: Option<IgnoredAny>,
    },
    /// An eventually consistent KV store (cluster feature).
    #[serde(rename = "store.kv.crdt")]
    KvCrdt {
        name: String,
        namespace: String,
        #[serde(default)]
        durable: Option<bool>,
        #[serde(default)]
        meta: Option<IgnoredAny>,
    },
}

/// `lifecycle:` of a service.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Lifecycle {
    #[serde(default)]
    pub(crate) auto_start: Option<bool>,
    #[serde(default)]
    pub(crate) restart: Option<Restart>,
}

/// `lifecycle.restart:` of a service.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Restart {
    pub(crate) initial_delay: Option<DurationText>,
    pub(crate) max_delay: Option<DurationText>,
    pub(crate) backoff_factor: Option<f64>,
    pub(crate) max_attempts: Option<u32>,
}

/// A duration written as milliseconds or as `"250ms"`, `"2s"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum DurationText {
    Millis(u64),
    Text(String),
}

impl DurationText {
    pub(crate) fn to_duration(&self) -> Result<std::time::Duration, String> {
        match self {
            DurationText::Millis(ms) => Ok(std::time::Duration::from_millis(*ms)),
            DurationText::Text(s) => {
                wippy_lua_stdlib::parse_ms(s).map(|ms| std::time::Duration::from_secs_f64(ms / 1000.0))
            }
        }
    }
}
