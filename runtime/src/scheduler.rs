//! Worker threads, each owning one Lua state and a run queue of processes.

mod core;
mod dispatch;
pub(crate) mod envelope;
mod fast;
mod host;
mod lifecycle;
pub(crate) mod mailroom;
pub(crate) mod preempt;
mod procs;
mod timers;
mod transfer;
mod worker;

pub(crate) use worker::run_worker;
