//! What one worker hands another: messages, spawns and process signals.
//!
//! Envelopes between two workers travel in batches (see `mailroom.rs`), in
//! the order they were produced, which is what keeps sends FIFO per
//! sender→receiver pair even when a message and an exit signal race.

use wippy_lua_stdlib::{HostError, SpawnFlags, Value};

/// The outcome of a process: its return value or its error text.
pub type ExitResult = Result<Value, String>;

/// Lifecycle events a process can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum EventKind {
    /// A monitored process ended (`pid.exit`).
    Exit,
    /// A linked process ended; abnormal ends become `pid.link.down`.
    LinkExit,
    /// Someone asked the process to stop (`pid.cancel`).
    Cancel,
}

/// One unit of cross-worker traffic. `to` is the target's PID counter.
#[derive(Debug)]
pub(crate) enum Envelope {
    /// A user message.
    Message { to: u64, to_pid: String, from: String, topic: String, payload: Value },
    /// Start a process that another worker placed here.
    Spawn(Box<SpawnOrder>),
    /// A lifecycle event for `to`.
    Event { to: u64, kind: EventKind, from: String, result: ExitResult, reason: String },
    /// `from` starts or stops watching (monitor, or link when `link`) `to_pid`.
    Watch { to: u64, to_pid: String, from: String, link: bool, on: bool },
    /// Kill `to` with `reason`.
    Kill { to: u64, reason: String },
    /// Drop `name` unless `to_pid` is alive (registered for a PID on another worker).
    CheckName { to: u64, to_pid: String, name: String },
    /// Node `node` went down: fire monitors and links to its processes.
    /// Posted to every worker, never routed by target.
    NodeDown { node: String },
    /// `to` took a claim (a CONSISTENT name registered for it elsewhere):
    /// mark it so its exit gives the claim back, or give it back at once
    /// if it has exited already.
    MarkClaims { to: u64, to_pid: String },
    /// The answer to host call `call` (a store request) made by a process
    /// of this worker. Posted to that worker, never routed by target.
    Reply { call: u64, result: Result<Value, HostError> },
}

/// Everything a worker needs to start a process it did not place itself.
#[derive(Debug)]
pub(crate) struct SpawnOrder {
    /// Counter of the new PID.
    pub counter: u64,
    /// PID string.
    pub pid: String,
    /// Definition id (`ns:name`).
    pub def: String,
    /// Spawning process, or empty for the node itself.
    pub parent: String,
    /// Monitor/link bits.
    pub flags: SpawnFlags,
    /// Arguments.
    pub args: Vec<Value>,
    /// The node wants to hear when it exits (services, `Node::spawn` callers).
    pub system_watch: bool,
}

impl Envelope {
    /// The counter of the process this envelope is for.
    pub(crate) fn target(&self) -> u64 {
        match self {
            Envelope::Message { to, .. }
            | Envelope::Event { to, .. }
            | Envelope::Watch { to, .. }
            | Envelope::Kill { to, .. }
            | Envelope::CheckName { to, .. }
            | Envelope::MarkClaims { to, .. } => *to,
            Envelope::Spawn(order) => order.counter,
            Envelope::NodeDown { .. } | Envelope::Reply { .. } => 0,
        }
    }
}
