//! `system.lock`: cluster-wide locks kept in the Raft state.
//!
//! A lock is the record `lock/<name>`, written only if absent (so two
//! acquires can never both succeed) and owned by the holder's node
//! incarnation, so the leader removes it when that node dies, leaves, or
//! restarts. Its version, the log index of the acquiring write, is the
//! fencing token: every later acquire of any lock gets a larger one.
//!
//! This node remembers which of its processes hold which locks, to release
//! them when the holder calls `release` and when it exits. An acquire still
//! in flight when its process exits is released as soon as it lands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wippy_lua_stdlib::{HostError, Value};

use crate::raft::client::{self, ClientError};
use crate::raft::request::{Reply, Request};
use crate::raft::service::owner_id;
use crate::raft::state_machine::wall_ms;
use crate::raft::types::{Command, Cond, Response};
use crate::shared::Shared;

/// Pause between tries of an acquire that waits for a held lock.
const RETRY: Duration = Duration::from_millis(25);

/// The locks this node's processes hold or are acquiring.
#[derive(Default)]
pub(crate) struct Held {
    by_pid: Mutex<HashMap<String, Holder>>,
}

/// One process's locks.
#[derive(Default)]
struct Holder {
    /// Lock name → fencing token of the holding write.
    locks: HashMap<String, u64>,
    /// Acquires started and not answered yet.
    pending: u32,
    /// The process has exited: anything still landing is released.
    exited: bool,
}

impl Held {
    fn begin(&self, pid: &str) {
        self.by_pid.lock().unwrap_or_else(|e| e.into_inner()).entry(pid.to_owned()).or_default().pending += 1;
    }

    /// Records the outcome of an acquire; `false` when its process exited
    /// meanwhile (the caller then releases the lock).
    fn land(&self, pid: &str, name: &str, token: Option<u64>) -> bool {
        let mut map = self.by_pid.lock().unwrap_or_else(|e| e.into_inner());
        let Some(h) = map.get_mut(pid) else { return false };
        h.pending = h.pending.saturating_sub(1);
        let alive = !h.exited;
        if let (Some(t), true) = (token, alive) {
            h.locks.insert(name.to_owned(), t);
        }
        if h.exited && h.pending == 0 {
            map.remove(pid);
        }
        alive
    }

    fn take(&self, pid: &str, name: &str) -> Option<u64> {
        let mut map = self.by_pid.lock().unwrap_or_else(|e| e.into_inner());
        let h = map.get_mut(pid)?;
        let token = h.locks.remove(name);
        if h.locks.is_empty() && h.pending == 0 {
            map.remove(pid);
        }
        token
    }

    /// The process exited: its locks, to release.
    fn exit(&self, pid: &str) -> Vec<(String, u64)> {
        let mut map = self.by_pid.lock().unwrap_or_else(|e| e.into_inner());
        let Some(h) = map.get_mut(pid) else { return Vec::new() };
        let locks = h.locks.drain().collect();
        if h.pending == 0 {
            map.remove(pid);
        } else {
            h.exited = true;
        }
        locks
    }
}

fn key(name: &str) -> String {
    format!("lock/{name}")
}

/// This node's current incarnation as a record owner.
fn me(shared: &Shared) -> String {
    let view = shared.cluster.read().unwrap_or_else(|e| e.into_inner());
    let generation = view.iter().flatten().find(|m| m.is_local).map_or(0, |m| m.generation);
    owner_id(&shared.node_id, generation)
}

async fn write(shared: &Arc<Shared>, cmd: Command) -> Result<Response, HostError> {
    match client::request(shared, Request::Write(cmd)).await {
        Ok(Reply::Written(r)) => Ok(r),
        Ok(_) => Err(HostError { kind: "INTERNAL", message: "raft answered a different request".into() }),
        Err(e @ ClientError::NoLeader(_)) | Err(e @ ClientError::Unknown(_)) => {
            Err(HostError::unavailable(e.to_string()))
        }
    }
}

/// `system.lock.acquire(name [, {wait}])` by `pid`: the fencing token, or
/// `ALREADY_EXISTS` naming the holder when the lock stays held past `wait`.
pub(crate) async fn acquire(shared: &Arc<Shared>, pid: &str, name: &str, wait: Duration) -> Result<Value, HostError> {
    let deadline = Instant::now() + wait;
    let owner = me(shared);
    shared.locks.begin(pid);
    let outcome = loop {
        let cmd = Command::Put {
            key: key(name),
            value: pid.as_bytes().to_vec(),
            cond: Cond::Absent,
            ttl_ms: None,
            now_ms: wall_ms(),
            owner: Some(owner.clone()),
        };
        match write(shared, cmd).await {
            Ok(r) if r.applied => break Ok(r.version),
            Ok(r) if r.previous.as_deref() == Some(pid.as_bytes()) => {
                break Err(HostError::already_exists(format!("lock held: {name} (by this process)")));
            }
            Ok(r) if Instant::now() >= deadline => {
                let holder = r.previous.map(|p| String::from_utf8_lossy(&p).into_owned()).unwrap_or_default();
                break Err(HostError::already_exists(format!("lock held: {name} (by {holder})")));
            }
            Ok(_) => tokio::time::sleep(RETRY.min(deadline.saturating_duration_since(Instant::now()))).await,
            Err(e) => break Err(e),
        }
    };
    let token = outcome.as_ref().ok().copied();
    if !shared.locks.land(pid, name, token)
        && let Some(t) = token
    {
        // The process exited while the acquire was in flight.
        release_token(shared, name, t).await;
        return Err(HostError::not_found(format!("process {pid} exited")));
    }
    outcome.map(|t| Value::Int(i64::try_from(t).unwrap_or(i64::MAX)))
}

/// `system.lock.release(name)` by `pid`: `true` if it held the lock.
pub(crate) async fn release(shared: &Arc<Shared>, pid: &str, name: &str) -> Result<Value, HostError> {
    let Some(token) = shared.locks.take(pid, name) else { return Ok(Value::Bool(false)) };
    let cmd = Command::Delete { key: key(name), cond: Cond::Version(token), now_ms: wall_ms() };
    write(shared, cmd).await.map(|r| Value::Bool(r.applied))
}

async fn release_token(shared: &Arc<Shared>, name: &str, token: u64) {
    let cmd = Command::Delete { key: key(name), cond: Cond::Version(token), now_ms: wall_ms() };
    if let Err(e) = write(shared, cmd).await {
        // The leader removes it with the node at the latest; until then it
        // stays held by a dead process.
        tracing::warn!(lock = %name, error = %e, "lock: release of an exited holder's lock failed");
    }
}

/// Process `pid` exited: release what it held (on the mesh thread).
pub(crate) fn on_exit(shared: &Arc<Shared>, pid: &str) {
    let locks = shared.locks.exit(pid);
    if locks.is_empty() {
        return;
    }
    let mesh = shared.mesh.lock().unwrap_or_else(|e| e.into_inner());
    let Some(spawner) = mesh.as_ref() else { return };
    let shared = shared.clone();
    spawner.spawn(async move {
        for (name, token) in locks {
            release_token(&shared, &name, token).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_locks_follow_their_process() {
        let held = Held::default();
        held.begin("p1");
        assert!(held.land("p1", "a", Some(7)));
        held.begin("p1");
        assert!(held.land("p1", "b", None), "a failed acquire records nothing");
        assert_eq!(held.take("p1", "b"), None);
        assert_eq!(held.take("p2", "a"), None, "another process does not hold it");
        held.begin("p1");
        assert!(held.land("p1", "c", Some(9)));
        assert_eq!(held.exit("p1").len(), 2);
        assert!(held.by_pid.lock().unwrap().is_empty());
    }

    #[test]
    fn an_acquire_landing_after_its_process_exited_is_handed_back() {
        let held = Held::default();
        held.begin("p1");
        assert!(held.exit("p1").is_empty());
        assert!(!held.land("p1", "a", Some(3)), "the caller must release it");
        assert!(held.by_pid.lock().unwrap().is_empty());
    }
}
