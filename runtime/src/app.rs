//! Apps: the entries a node runs, loaded from `src/**/_index.yaml` or from a
//! single Lua file.

mod index;
mod loader;

use std::sync::Arc;

pub use loader::{AppError, load_dir, load_script};

/// A `process.lua` entry: source text and the function to call.
#[derive(Debug, Clone)]
pub struct Definition {
    /// Entry id, `namespace:name`.
    pub id: String,
    /// Lua source text.
    pub source: Arc<str>,
    /// Name used in tracebacks (`@src/worker.lua`).
    pub chunkname: String,
    /// Function to call; empty when the chunk itself is the process body.
    pub method: String,
}

/// Restart policy of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    /// First delay after a failure.
    pub initial_delay: std::time::Duration,
    /// Upper bound of the delay.
    pub max_delay: std::time::Duration,
    /// Multiplier applied after each consecutive failure.
    pub backoff_factor: f64,
    /// Give up after this many consecutive failures (0: never).
    pub max_attempts: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_delay: std::time::Duration::from_millis(100),
            max_delay: std::time::Duration::from_secs(10),
            backoff_factor: 2.0,
            max_attempts: 0,
        }
    }
}

/// A `process.service` entry.
#[derive(Debug, Clone)]
pub struct Service {
    /// Entry id.
    pub id: String,
    /// Process definition to run.
    pub process: String,
    /// Host to run it on.
    pub host: String,
    /// Arguments passed to the process function.
    pub args: Vec<wippy_lua_stdlib::Value>,
    /// When to restart it.
    pub restart: RestartPolicy,
    /// Start at boot.
    pub auto_start: bool,
}

/// Everything a node runs.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// Process definitions.
    pub definitions: Vec<Definition>,
    /// Host ids.
    pub hosts: Vec<String>,
    /// Services started at boot.
    pub services: Vec<Service>,
    /// Replicated stores (`store.kv.raft`, `store.kv.crdt` entries).
    pub stores: Vec<StoreDef>,
    /// Declared process-group scopes.
    pub pg_scopes: Vec<PgScopeDef>,
    /// For `wippy run FILE.lua`: the definition and host of the main process.
    pub main: Option<(String, String)>,
}

/// A process-group scope an app declares (`pg.scope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgScopeDef {
    /// The entry id (`ns:name`), what `pg.open` takes.
    pub id: String,
    /// How often nodes compare their group state (0: never).
    pub anti_entropy: std::time::Duration,
    /// Distinct groups allowed (0: unlimited).
    pub max_groups: usize,
    /// Members allowed per group, counting every join (0: unlimited).
    pub max_members: usize,
}

/// A replicated store an app declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDef {
    /// The entry id (`ns:name`), what `store.get` takes.
    pub id: String,
    /// Which replication it uses.
    pub backend: StoreBackend,
    /// Keeps its keys apart from other stores' (`^[a-z][a-z0-9._-]*$`).
    pub namespace: String,
    /// For `kv.crdt`: kept on disk across a full restart.
    pub durable: bool,
}

/// How a store replicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreBackend {
    /// Through the Raft log: linearizable.
    KvRaft,
    /// Gossiped last-writer-wins: eventual.
    KvCrdt,
}

impl Definition {
    /// A definition from source text (the chunk name is `=id`). The source is
    /// not checked here; a syntax error surfaces when a process is spawned.
    pub fn new(id: &str, source: &str, method: &str) -> Definition {
        Definition {
            id: id.to_string(),
            source: Arc::from(source),
            chunkname: format!("={id}"),
            method: method.to_string(),
        }
    }
}

impl App {
    /// An app with one host and the given definitions (tests, benchmarks, embedding).
    pub fn with_host(host: &str, definitions: Vec<Definition>) -> App {
        App {
            definitions,
            hosts: vec![host.to_string()],
            services: Vec::new(),
            stores: Vec::new(),
            pg_scopes: Vec::new(),
            main: None,
        }
    }
}
