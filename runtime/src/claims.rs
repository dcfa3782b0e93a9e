//! Claims that processes of this node hold in the replicated state (locks,
//! cluster-wide names), so they are given back when the process exits. A
//! claim still in flight when its process exits is given back as soon as
//! it lands. [`Claims`] is the bookkeeping; the functions below are the
//! Raft writes that locks and names share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wippy_lua_stdlib::HostError;

use crate::raft::client::{self, ClientError};
use crate::raft::request::{Reply, Request};
use crate::raft::state_machine::wall_ms;
use crate::raft::types::{Command, Cond, Response};
use crate::raft::upkeep::owner_id;
use crate::shared::Shared;

/// This node's current incarnation as a record owner.
pub(crate) fn me(shared: &Shared) -> String {
    let view = shared.cluster.read().unwrap_or_else(|e| e.into_inner());
    let generation = view.iter().flatten().find(|m| m.is_local).map_or(0, |m| m.generation);
    owner_id(&shared.node_id, generation)
}

/// Commits `cmd`; a failure is `UNAVAILABLE` with the client's reason.
pub(crate) async fn write(shared: &Arc<Shared>, cmd: Command) -> Result<Response, HostError> {
    match client::request(shared, Request::Write(cmd)).await {
        Ok(Reply::Written(r)) => Ok(r),
        Ok(_) => Err(HostError { kind: "INTERNAL", message: "raft answered a different request".into() }),
        Err(e @ ClientError::NoLeader(_)) | Err(e @ ClientError::Unknown(_)) => {
            Err(HostError::unavailable(e.to_string()))
        }
    }
}

/// The write that claims `key` for `pid`: only if free, owned by this
/// node's incarnation (so the leader removes it when the node goes).
pub(crate) fn claim(shared: &Shared, key: String, pid: &str) -> Command {
    Command::Put {
        key,
        value: pid.as_bytes().to_vec(),
        cond: Cond::Absent,
        ttl_ms: None,
        now_ms: wall_ms(),
        owner: Some(me(shared)),
    }
}

/// Removes the record `key` if it is still the write at `version`.
pub(crate) async fn give_back(shared: &Arc<Shared>, key: &str, version: u64) {
    let cmd = Command::Delete { key: key.to_owned(), cond: Cond::Version(version), now_ms: wall_ms() };
    if let Err(e) = write(shared, cmd).await {
        // The leader removes it with this node at the latest; until then
        // it stays claimed by a dead process.
        tracing::warn!(%key, error = %e, "could not give back the claim of an exited process");
    }
}

/// Process `pid` exited: gives back what it held in `claims` (record keys
/// from `key`), on the mesh thread.
pub(crate) fn give_back_on_exit(shared: &Arc<Shared>, claims: &Claims, pid: &str, key: fn(&str) -> String) {
    let held = claims.exit(pid);
    if held.is_empty() {
        return;
    }
    let mesh = shared.mesh.lock().unwrap_or_else(|e| e.into_inner());
    let Some(spawner) = mesh.as_ref() else { return };
    let shared = shared.clone();
    spawner.spawn(async move {
        for (name, version) in held {
            give_back(&shared, &key(&name), version).await;
        }
    });
}

/// What this node's processes hold (locks, or names), by process.
#[derive(Default)]
pub(crate) struct Claims {
    by_pid: Mutex<HashMap<String, Holder>>,
}

/// One process's locks.
#[derive(Default)]
struct Holder {
    /// Claim (lock or name) → version of the holding write.
    locks: HashMap<String, u64>,
    /// Claims started and not answered yet.
    pending: u32,
    /// The process has exited: anything still landing is released.
    exited: bool,
}

impl Claims {
    pub(crate) fn begin(&self, pid: &str) {
        self.by_pid.lock().unwrap_or_else(|e| e.into_inner()).entry(pid.to_owned()).or_default().pending += 1;
    }

    /// Records the outcome of a claim; `false` when its process exited
    /// meanwhile (the caller then gives the claim back).
    pub(crate) fn land(&self, pid: &str, name: &str, token: Option<u64>) -> bool {
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

    pub(crate) fn take(&self, pid: &str, name: &str) -> Option<u64> {
        let mut map = self.by_pid.lock().unwrap_or_else(|e| e.into_inner());
        let h = map.get_mut(pid)?;
        let token = h.locks.remove(name);
        if h.locks.is_empty() && h.pending == 0 {
            map.remove(pid);
        }
        token
    }

    /// Whether any process holds a claim here.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_pid.lock().unwrap_or_else(|e| e.into_inner()).values().all(|h| h.locks.is_empty())
    }

    /// Takes every held claim away from its process (they are lost), as
    /// (pid, claim, version).
    pub(crate) fn drain(&self) -> Vec<(String, String, u64)> {
        let mut map = self.by_pid.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (pid, h) in map.iter_mut() {
            out.extend(h.locks.drain().map(|(name, v)| (pid.clone(), name, v)));
        }
        map.retain(|_, h| h.pending > 0);
        out
    }

    /// The process exited: its claims, to give back.
    pub(crate) fn exit(&self, pid: &str) -> Vec<(String, u64)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_locks_follow_their_process() {
        let held = Claims::default();
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
    fn lost_claims_are_taken_from_their_holders() {
        let held = Claims::default();
        assert!(held.is_empty());
        held.begin("p1");
        held.land("p1", "a", Some(7));
        held.begin("p2");
        assert!(!held.is_empty());
        assert_eq!(held.drain(), vec![("p1".to_owned(), "a".to_owned(), 7)]);
        assert!(held.is_empty());
        assert_eq!(held.take("p1", "a"), None, "the holder no longer has it");
        // p2's acquire is still in flight and lands normally.
        assert!(held.land("p2", "b", Some(9)));
        assert!(!held.is_empty());
    }

    #[test]
    fn an_acquire_landing_after_its_process_exited_is_handed_back() {
        let held = Claims::default();
        held.begin("p1");
        assert!(held.exit("p1").is_empty());
        assert!(!held.land("p1", "a", Some(3)), "the caller must release it");
        assert!(held.by_pid.lock().unwrap().is_empty());
    }
}
