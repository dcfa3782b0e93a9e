//! Claims that processes of this node hold in the replicated state (locks,
//! cluster-wide names), so they are given back when the process exits. A
//! claim still in flight when its process exits is given back as soon as
//! it lands. Pure bookkeeping: the callers do the Raft writes.

use std::collections::HashMap;
use std::sync::Mutex;

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
    fn an_acquire_landing_after_its_process_exited_is_handed_back() {
        let held = Claims::default();
        held.begin("p1");
        assert!(held.exit("p1").is_empty());
        assert!(!held.land("p1", "a", Some(3)), "the caller must release it");
        assert!(held.by_pid.lock().unwrap().is_empty());
    }
}
