//! Worker threads, each owning one Lua state and a run queue of processes.

pub(crate) mod envelope;
mod fast;
mod host;
pub(crate) mod mailroom;
pub(crate) mod preempt;
mod procs;
mod timers;
mod worker;

pub(crate) use worker::run_worker;
