//! Linearizability of kv.raft, system.lock and CONSISTENT names under
//! faults. (The checker's own tests live in `common/linear.rs`; the fault
//! scenarios follow.)

#[path = "common/linear.rs"]
mod linear;
