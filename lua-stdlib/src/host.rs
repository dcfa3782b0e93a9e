//! [`Host`]: what the Lua surface needs from the engine.
//!
//! The kernel keeps mailboxes and channels inside Lua; anything that crosses
//! a worker, touches shared tables (names, links) or needs the clock goes
//! through this trait. The runtime implements it once per worker; tests can
//! implement it with plain collections.

use crate::Value;

/// An error a host call reports back to Lua as `nil, err`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct HostError {
    /// One of the `errors` kinds (`INVALID`, `NOT_FOUND`, ...).
    pub kind: &'static str,
    /// The message Lua sees through `tostring(err)`.
    pub message: String,
}

impl HostError {
    /// A caller mistake.
    pub fn invalid(message: impl Into<String>) -> Self {
        HostError { kind: "INVALID", message: message.into() }
    }
    /// Nothing by that name or id.
    pub fn not_found(message: impl Into<String>) -> Self {
        HostError { kind: "NOT_FOUND", message: message.into() }
    }
    /// A name or resource is taken.
    pub fn already_exists(message: impl Into<String>) -> Self {
        HostError { kind: "ALREADY_EXISTS", message: message.into() }
    }
    /// The service cannot answer now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        HostError { kind: "UNAVAILABLE", message: message.into() }
    }
}

/// Result of a host call.
pub type HostResult<T> = Result<T, HostError>;

/// Outcome of a send that the kernel could not deliver itself.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// Handed to another worker or node (or dropped: the PID is dead).
    Routed,
    /// The name resolved to this PID, which lives on this worker.
    Local(String),
}

/// Spawn options, as bits: 1 monitor, 2 link, 4 monitor for `process.exec`.
pub type SpawnFlags = u32;

/// Log levels for `logger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

/// This node's part in Raft, as `system.raft.*` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftStatus {
    /// `leader`, `voter`, `standby` or `non-member`.
    pub role: String,
    /// The current term.
    pub term: u64,
    /// The last committed log index.
    pub commit_index: u64,
    /// The leader's node name, empty when there is none.
    pub leader: String,
    /// Diagnostics for `system.raft.stats()`.
    pub stats: Vec<(String, String)>,
}

/// One call on a replicated store, as `store.get(id):...` makes it. Keys
/// are non-empty strings; values anything a message can carry except nil.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    /// `s:get(k)` → the value, or `NOT_FOUND`.
    Get {
        /// The key.
        key: String,
    },
    /// `s:entry(k)` → `{key, value, version}`, or `NOT_FOUND`.
    Entry {
        /// The key.
        key: String,
    },
    /// `s:has(k)` → whether the key exists.
    Has {
        /// The key.
        key: String,
    },
    /// `s:set(k, v [, ttl])` → `true`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: Value,
        /// Lifetime in milliseconds.
        ttl_ms: Option<u64>,
    },
    /// `s:put(k, v, opts)` → the new entry, or `ALREADY_EXISTS` / `NOT_FOUND`
    /// when the condition does not hold.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Value,
        /// Lifetime in milliseconds.
        ttl_ms: Option<u64>,
        /// When the put applies.
        cond: PutCond,
    },
    /// `s:delete(k)` → whether the key existed.
    Delete {
        /// The key.
        key: String,
    },
    /// `s:list{prefix, after, limit}` → `{items, cursor, has_more}`.
    List {
        /// Keys starting with this.
        prefix: String,
        /// Resume after this key.
        after: Option<String>,
        /// Page size.
        limit: usize,
    },
}

/// The condition of [`StoreOp::Put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutCond {
    /// Unconditional.
    Always,
    /// `only_if_absent = true`.
    Absent,
    /// `if_version = n`: the key exists at version `n` (n ≥ 1).
    Version(u64),
}

/// A `system.lock` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOp {
    /// `acquire(name [, {wait}])` → the fencing token, or `ALREADY_EXISTS`.
    Acquire {
        /// The lock.
        name: String,
        /// How long to wait for a held lock (zero: fail at once).
        wait_ms: u64,
    },
    /// `release(name)` → whether the caller held it.
    Release {
        /// The lock.
        name: String,
    },
}

/// A `process.registry` call on a cluster scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameOp {
    /// `register(name [, pid], scope)` → `true`, or `ALREADY_EXISTS`.
    Register {
        /// The name.
        name: String,
        /// The process; the caller when `None`.
        pid: Option<String>,
        /// `EVENTUAL` (1), `CONSISTENT` (2) or `STRONG` (3).
        scope: i64,
    },
    /// `unregister(name, scope)` → whether it was registered.
    Unregister {
        /// The name.
        name: String,
        /// `EVENTUAL` (1), `CONSISTENT` (2) or `STRONG` (3).
        scope: i64,
    },
}

/// A `pg` call on one scope (see `pg.lua`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgOp {
    /// `pg.open(scope)`: whether the scope exists.
    Open,
    /// `g:join(groups)`.
    Join(Vec<String>),
    /// `g:leave(groups)`.
    Leave(Vec<String>),
    /// `g:get_members(group)` / `g:get_local_members(group)`.
    Members {
        /// The group.
        group: String,
        /// Only this node's members.
        local: bool,
    },
    /// `g:which_groups()` / `g:which_local_groups()`.
    Groups {
        /// Only groups with members on this node.
        local: bool,
    },
    /// `g:monitor(group)` (a group) or `g:events()` (the whole scope):
    /// `{id, members}`, the subscription and its starting snapshot.
    Watch(Option<String>),
    /// `sub:close()`.
    Unwatch(u64),
    /// `g:release()`: leave the scope's groups, close its subscriptions.
    Release,
}

/// What `s:info()` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    /// `kv.raft` or `kv.crdt`.
    pub backend: &'static str,
    /// `linearizable` or `eventual`.
    pub consistency: &'static str,
    /// Whether the data survives a full-cluster restart.
    pub durable: bool,
    /// Whether `put` takes `only_if_absent` / `if_version`.
    pub conditional_put: bool,
}

/// One cluster member as `system.cluster.members()` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMember {
    /// The member's node name (also its id).
    pub name: String,
    /// Its gossip address, `ip:port`.
    pub addr: String,
    /// `alive` or `suspect` (members declared dead or gone are not listed).
    pub state: String,
    /// The failure domain the member advertises.
    pub failure_domain: String,
    /// Its internode mesh address, `ip:port` (empty on a single node).
    pub internode: String,
    /// Whether this member is the calling node.
    pub is_local: bool,
}

/// The engine services the Lua surface calls.
pub trait Host {
    /// Makes the process in `slot` runnable (it was waiting).
    fn wake(&self, slot: u32);
    /// Routes a message the kernel did not find locally (`dest` is a PID or name).
    fn send(&self, from_slot: u32, dest: &str, topic: &str, payload: Value) -> HostResult<SendOutcome>;
    /// Places a new process of definition `id` on `host`. `thread` is the
    /// coroutine the kernel built for it; it is used only when the process
    /// lands on this worker. Returns `(slot, pid)` for a local placement or
    /// `(-(worker + 1), pid)` for another worker.
    fn spawn(&self, id: &str, host: &str, flags: SpawnFlags, thread: &mlua::Thread) -> HostResult<(i64, String)>;
    /// The source text, chunk name and method of a definition (first use on a worker).
    fn source(&self, id: &str) -> HostResult<(String, String, String)>;
    /// Ships a spawn to another worker.
    fn spawn_remote(
        &self,
        worker: usize,
        pid: &str,
        id: &str,
        flags: SpawnFlags,
        args: Vec<Value>,
    ) -> HostResult<String>;
    /// The process in `slot` ended: `Ok(value)` on return, `Err(message)` on error.
    fn exit(&self, slot: u32, result: Result<Value, String>);
    /// `process.monitor`.
    fn monitor(&self, slot: u32, dest: &str) -> HostResult<()>;
    /// `process.unmonitor`.
    fn unmonitor(&self, slot: u32, dest: &str) -> HostResult<()>;
    /// `process.link`.
    fn link(&self, slot: u32, dest: &str) -> HostResult<()>;
    /// `process.unlink`.
    fn unlink(&self, slot: u32, dest: &str) -> HostResult<()>;
    /// `process.cancel`.
    fn cancel(&self, slot: u32, dest: &str, reason: &str) -> HostResult<()>;
    /// `process.terminate` of another process.
    fn terminate(&self, slot: u32, dest: &str) -> HostResult<()>;
    /// `process.set_options{trap_links=...}`.
    fn trap_links(&self, slot: u32, on: bool);
    /// `process.registry.register`.
    fn register(&self, slot: u32, name: &str, pid: Option<&str>, scope: i64) -> HostResult<()>;
    /// `process.registry.lookup`.
    fn lookup(&self, name: &str) -> HostResult<String>;
    /// `process.registry.unregister`; `false` when nothing was removed.
    fn unregister(&self, slot: u32, name: &str, scope: i64) -> HostResult<bool>;
    /// Fires kernel timer `id` after `ms` milliseconds.
    fn timer(&self, id: u64, ms: f64);
    /// Milliseconds on a monotonic clock.
    fn now_ms(&self) -> f64;
    /// Wall-clock nanoseconds since the Unix epoch.
    fn wall_ns(&self) -> i64;
    /// The coroutine now running Lua code (for time-slice preemption).
    fn set_running(&self, thread: &mlua::Thread);
    /// Whether the last yield of a nested coroutine was a preemption.
    fn take_preempted(&self) -> bool;
    /// `system.exit(code)`: stop the node gracefully.
    fn node_exit(&self, code: i32);
    /// This node's id.
    fn node_id(&self) -> String;
    /// Writes one line to the node's stdout (`print`).
    fn print(&self, line: &[u8]);
    /// Writes a structured log line tagged with the running process.
    fn log(&self, level: Level, msg: &str, fields: &[(String, String)]);
    /// The cluster as gossip sees it, this node included. `None` when the
    /// cluster is not enabled: `system.cluster.*` then answers for a single
    /// node. Defaulted so hosts without clustering need not implement it.
    fn cluster_members(&self) -> Option<Vec<ClusterMember>> {
        None
    }
    /// This node's Raft status; `None` where Raft does not run (cluster
    /// disabled, a client node, not started yet).
    fn raft_status(&self) -> Option<RaftStatus> {
        None
    }
    /// Starts a `system.lock` call by the process in `slot`; answered later
    /// through `reply(call, ...)` like [`Host::store_call`].
    fn lock_call(&self, call: u64, slot: u32, op: LockOp) -> HostResult<()> {
        let _ = (call, slot, op);
        Err(HostError::unavailable("system.lock needs cluster.enabled: true"))
    }
    /// Starts a CONSISTENT `process.registry` call by the process in
    /// `slot`; answered later through `reply(call, ...)`.
    fn name_call(&self, call: u64, slot: u32, op: NameOp) -> HostResult<()> {
        let _ = (call, slot, op);
        Err(HostError::unavailable("cluster name scopes need cluster.enabled: true"))
    }
    /// A `pg` call on `scope` by the process in `slot`.
    fn pg_call(&self, slot: u32, scope: &str, op: PgOp) -> HostResult<Value> {
        let _ = (slot, op);
        Err(HostError::unavailable(format!("pg scope {scope}: process groups are not available here")))
    }
    /// What store `id` is, or `NOT_FOUND` when no entry declares it.
    fn store_info(&self, id: &str) -> HostResult<StoreInfo> {
        Err(HostError::not_found(format!("no store entry {id}")))
    }
    /// Starts `op` on store `store`; the answer arrives later through the
    /// kernel's `reply(call, ...)` on this worker. An `Err` means the call
    /// did not start (and no reply comes).
    fn store_call(&self, call: u64, store: &str, op: StoreOp) -> HostResult<()> {
        let _ = (call, op);
        Err(HostError::unavailable(format!("store {store}: replicated stores need cluster.enabled: true")))
    }
}
