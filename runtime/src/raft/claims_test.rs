//! Claims (CONSISTENT names, locks) of a process against a one-node Raft
//! whose records change behind the process's back, as when the majority
//! removed them while this node was out of contact: a repeated register
//! or acquire answers from the replicated record, never from the node's
//! bookkeeping alone.

use std::sync::Arc;
use std::time::Duration;

use wippy_lua_stdlib::Value;

use super::service::RaftService;
use super::service_test::options;
use super::store_test::TempDir;
use super::test_cluster::{TestNode, set_views, wait_for};
use super::types::{Command, Cond};
use crate::shared::Shared;

const PID: &str = "{solo@app:processes|0x00003}";
const OTHER: &str = "{peer@app:processes|0x00007}";

/// One node leading its own Raft; the directory lives as long as the
/// first element.
fn solo(name: &str) -> (TempDir, TestNode, RaftService) {
    let dir = TempDir::new();
    let node = TestNode::start(name);
    set_views(&[&node]);
    let service = RaftService::start(&options(&dir, 1), node.shared.clone()).unwrap();
    wait_for("leadership", Duration::from_secs(10), || {
        node.shared.raft_status.read().unwrap().as_ref().is_some_and(|s| s.role == "leader")
    });
    (dir, node, service)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn register(shared: &Arc<Shared>, name: &str) -> Result<Value, String> {
    shared.names.begin(PID);
    crate::naming::consistent::register(shared, name, PID).await.map_err(|e| format!("{}: {}", e.kind, e.message))
}

async fn acquire(shared: &Arc<Shared>, name: &str) -> Result<Value, String> {
    shared.locks.begin(PID);
    crate::lock::acquire(shared, PID, name, Duration::ZERO).await.map_err(|e| format!("{}: {}", e.kind, e.message))
}

fn delete(key: &str) -> Command {
    Command::Delete { key: key.into(), cond: Cond::Always, now_ms: 0 }
}

fn put(key: &str, pid: &str) -> Command {
    Command::Put { key: key.into(), value: pid.into(), cond: Cond::Always, ttl_ms: None, now_ms: 0, owner: None }
}

#[test]
fn a_name_removed_behind_its_holder_is_registered_afresh_or_reported_taken() {
    let (_dir, mut node, service) = solo("solo");
    let rt = runtime();
    let shared = node.shared.clone();

    assert_eq!(rt.block_on(register(&shared, "N")), Ok(Value::Bool(true)));
    let held = shared.names.version(PID, "N").expect("held after registering");
    assert_eq!(rt.block_on(register(&shared, "N")), Ok(Value::Bool(true)), "registering again is fine");
    assert_eq!(shared.names.version(PID, "N"), Some(held), "and writes nothing");

    // The record goes: registering again claims it anew, at a new version.
    service.write(delete("name/N")).unwrap();
    assert_eq!(rt.block_on(register(&shared, "N")), Ok(Value::Bool(true)));
    let again = shared.names.version(PID, "N").expect("held again");
    assert!(again > held, "a fresh write: {again} after {held}");
    assert_eq!(service.read("name/N").as_deref(), Some(PID.as_bytes()));

    // Another process took it: the holder is told who, and no longer holds it.
    service.write(put("name/N", OTHER)).unwrap();
    let taken = rt.block_on(register(&shared, "N")).unwrap_err();
    assert!(taken.starts_with("ALREADY_EXISTS") && taken.contains(OTHER), "{taken}");
    assert_eq!(shared.names.version(PID, "N"), None);
    service.stop();
    node.stop_mesh();
}

#[test]
fn a_lock_removed_behind_its_holder_is_acquired_afresh() {
    let (_dir, mut node, service) = solo("solo");
    let rt = runtime();
    let shared = node.shared.clone();

    let Ok(Value::Int(first)) = rt.block_on(acquire(&shared, "L")) else { panic!("first acquire fails") };
    let held = rt.block_on(acquire(&shared, "L")).unwrap_err();
    assert!(held.contains("by this process"), "{held}");

    service.write(delete("lock/L")).unwrap();
    let Ok(Value::Int(second)) = rt.block_on(acquire(&shared, "L")) else { panic!("the lock is free again") };
    assert!(second > first, "fencing tokens grow: {second} after {first}");

    service.write(put("lock/L", OTHER)).unwrap();
    let taken = rt.block_on(acquire(&shared, "L")).unwrap_err();
    assert!(taken.starts_with("ALREADY_EXISTS") && taken.contains(OTHER), "{taken}");
    assert!(!shared.locks.holds(PID, "L"));
    service.stop();
    node.stop_mesh();
}
