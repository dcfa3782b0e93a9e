//! The bookkeeping of claims (locks, or names) that this node's processes
//! hold: by process, with the version of each holding write, the claims
//! still in flight, and those whose outcome is unknown. Pure: no Raft, no
//! clock; `claims.rs` does the writes and calls in here.

use std::collections::HashMap;
use std::sync::Mutex;

/// What this node's processes hold (locks, or names), by process.
#[derive(Default)]
pub(crate) struct Claims {
    by_pid: Mutex<HashMap<String, Holder>>,
    /// Claims whose write's outcome was reported unknown and is being
    /// watched: (pid, claim) to the owner the write named. See
    /// [`write_claim`] and [`give_up`].
    unknown: Mutex<HashMap<(String, String), String>>,
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

    /// The version of the write by which `pid` holds claim `name` here.
    pub(crate) fn version(&self, pid: &str, name: &str) -> Option<u64> {
        let map = self.by_pid.lock().unwrap_or_else(|e| e.into_inner());
        map.get(pid).and_then(|h| h.locks.get(name).copied())
    }

    /// Whether `pid` holds claim `name` here.
    pub(crate) fn holds(&self, pid: &str, name: &str) -> bool {
        let map = self.by_pid.lock().unwrap_or_else(|e| e.into_inner());
        map.get(pid).is_some_and(|h| h.locks.contains_key(name))
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

    /// Marks a claim whose outcome is unknown, with the owner its write
    /// named (`None` unmarks it).
    pub(crate) fn set_unknown(&self, pid: &str, name: &str, owner: Option<&str>) {
        let mut map = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        let key = (pid.to_owned(), name.to_owned());
        match owner {
            Some(o) => map.insert(key, o.to_owned()),
            None => map.remove(&key),
        };
    }

    /// The owner of `pid`'s claim on `name` while its outcome is unknown.
    pub(crate) fn unknown_owner(&self, pid: &str, name: &str) -> Option<String> {
        self.unknown.lock().unwrap_or_else(|e| e.into_inner()).get(&(pid.to_owned(), name.to_owned())).cloned()
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
