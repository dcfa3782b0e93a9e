//! The wippy engine.
//!
//! Layout and data flow:
//! - [`node`] starts and stops everything in order.
//! - `scheduler`: N worker threads; each owns one Lua state (the kernel from
//!   `wippy-lua-stdlib`) and a run queue. A process is a coroutine resumed
//!   directly by its worker; it never moves.
//! - A send between two processes of one worker stays in Lua. A send to
//!   another worker becomes an envelope, batched per target and handed over
//!   once per slice; the receiving worker turns it back into Lua values.
//! - [`naming`] keeps LOCAL names; `service` supervises `process.service`
//!   entries; [`app`] loads `_index.yaml` files and Lua sources.
//! - A process that runs past its time slice is preempted by a one-shot
//!   hook set from the watchdog thread (`scheduler/preempt.rs`).

pub mod access;
mod admin;
pub mod app;
mod claims;
mod cluster;
mod crdt;
mod fxhash;
pub mod identity;
mod lock;
pub mod naming;
pub mod node;
pub mod pid;
mod raft;
mod replica;
mod scheduler;
mod service;
mod shared;
mod stats;
mod store;

pub use access::{AccessError, AccessOptions};
pub use admin::{AdminError, AdminOptions};
pub use app::{App, AppError, Definition, PgScopeDef, RestartPolicy, Service, StoreBackend, StoreDef};
pub use cluster::gossip::{ClusterOptions, GossipError};
pub use node::{ExitHandle, Node, NodeError, NodeOptions};
pub use pid::{Pid, PidError};
pub use raft::service::{RaftOptions, RaftStartError};
pub use scheduler::envelope::ExitResult;
pub use wippy_lua_stdlib::{HostError, Value};
