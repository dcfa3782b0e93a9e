//! A client node's copy of the Raft-backed names (CONSISTENT and STRONG).
//!
//! A client node keeps no Raft replica, so it follows the members: each
//! member sends it a full copy of its name index when asked (on every new
//! connection and at every anti-entropy round), then every change it
//! applies. Several members may send the same change, or one member's
//! copy may lag another's, so every change carries the log index of the
//! write that made it and an older one never replaces a newer one.
//! Removals are kept as markers until a full copy covers their index. A
//! full copy is authoritative up to its index, so a name missing from it
//! at or below that index is gone.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::raft::name_index::NameChange;

/// Name → (pid, or `None` once removed; log index of that change).
#[derive(Default)]
pub(crate) struct FollowedNames(RwLock<HashMap<String, (Option<String>, u64)>>);

impl FollowedNames {
    /// The pid and version `name` is bound to, as last heard.
    pub(crate) fn get(&self, name: &str) -> Option<(String, u64)> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(name).and_then(|(pid, index)| pid.clone().map(|p| (p, *index)))
    }

    /// Changes a member applied, in its order.
    pub(crate) fn changes(&self, changes: Vec<NameChange>) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        for c in changes {
            let newer = map.get(&c.name).is_none_or(|(_, held)| c.index >= *held);
            if newer {
                map.insert(c.name, (c.pid, c.index));
            }
        }
    }

    /// A member's whole index as of log index `applied`.
    pub(crate) fn copy(&self, applied: u64, all: Vec<NameChange>) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        let present: std::collections::HashSet<&String> = all.iter().map(|c| &c.name).collect();
        map.retain(|name, (_, index)| *index > applied || present.contains(name));
        drop(present);
        for c in all {
            let newer = map.get(&c.name).is_none_or(|(_, held)| c.index >= *held);
            if newer {
                map.insert(c.name, (c.pid, c.index));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(name: &str, index: u64, pid: &str) -> NameChange {
        NameChange { name: name.into(), index, pid: Some(pid.into()) }
    }

    fn removed(name: &str, index: u64) -> NameChange {
        NameChange { name: name.into(), index, pid: None }
    }

    #[test]
    fn an_older_change_never_replaces_a_newer_one() {
        let f = FollowedNames::default();
        f.changes(vec![bound("a", 5, "p1")]);
        f.changes(vec![removed("a", 9)]);
        f.changes(vec![bound("a", 5, "p1")]);
        assert_eq!(f.get("a"), None, "a lagging member's repeat does not revive it");
        f.changes(vec![bound("a", 12, "p2")]);
        assert_eq!(f.get("a"), Some(("p2".into(), 12)));
    }

    #[test]
    fn a_full_copy_drops_what_it_no_longer_holds_up_to_its_index() {
        let f = FollowedNames::default();
        f.changes(vec![bound("old", 3, "p"), bound("fresh", 20, "q"), removed("gone", 4)]);
        f.copy(10, vec![bound("kept", 7, "r")]);
        assert_eq!(f.get("old"), None, "removed before the copy's index");
        assert_eq!(f.get("fresh"), Some(("q".into(), 20)), "newer than the copy: kept");
        assert_eq!(f.get("kept"), Some(("r".into(), 7)));
        assert_eq!(f.0.read().unwrap().len(), 2, "the removal marker is covered and dropped");
    }
}
