//! What one node publishes about its own processes: the process-group
//! memberships and the EVENTUAL names it holds, and the changes to them.
//!
//! Only the node that owns a process ever writes its entries, so copies on
//! other nodes never conflict: they are replaced by a snapshot or advanced
//! by the owner's numbered changes (`book.rs`). Conflicts exist only
//! between two owners' names, and every node settles them the same way
//! (`table.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One EVENTUAL name as its owner registered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Binding {
    /// The process, as a pid string.
    pub pid: String,
    /// When it was registered (wall-clock ns): the earlier registration
    /// wins a conflict, the owner's node name breaks a tie.
    pub at: u64,
}

/// Everything one node publishes. Groups keep a pid once per join, so a
/// process that joined twice must leave twice (as Erlang's `pg`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OriginState {
    /// Scope → group → member pids.
    pub groups: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// EVENTUAL name → binding.
    pub names: BTreeMap<String, Binding>,
}

/// One change an owner makes to its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Change {
    /// `pid` joined `group` of `scope` once more.
    Join {
        /// The pg scope.
        scope: String,
        /// The group.
        group: String,
        /// The process.
        pid: String,
    },
    /// `pid` left `group` of `scope` once (`all`: every time it joined).
    Leave {
        /// The pg scope.
        scope: String,
        /// The group.
        group: String,
        /// The process.
        pid: String,
        /// Remove every join of the process (it exited).
        all: bool,
    },
    /// `name` is bound.
    Bind {
        /// The name.
        name: String,
        /// To what.
        binding: Binding,
    },
    /// `name` is no longer bound.
    Unbind {
        /// The name.
        name: String,
    },
}

impl OriginState {
    /// Applies one change; returns how many memberships it added or
    /// removed (for group changes), so callers know whether anything moved.
    pub(crate) fn apply(&mut self, change: &Change) -> usize {
        match change {
            Change::Join { scope, group, pid } => {
                self.groups.entry(scope.clone()).or_default().entry(group.clone()).or_default().push(pid.clone());
                1
            }
            Change::Leave { scope, group, pid, all } => {
                let Some(groups) = self.groups.get_mut(scope) else { return 0 };
                let Some(members) = groups.get_mut(group) else { return 0 };
                let before = members.len();
                if *all {
                    members.retain(|p| p != pid);
                } else if let Some(i) = members.iter().position(|p| p == pid) {
                    members.remove(i);
                }
                let removed = before - members.len();
                if members.is_empty() {
                    groups.remove(group);
                }
                if groups.is_empty() {
                    self.groups.remove(scope);
                }
                removed
            }
            Change::Bind { name, binding } => {
                self.names.insert(name.clone(), binding.clone());
                1
            }
            Change::Unbind { name } => usize::from(self.names.remove(name).is_some()),
        }
    }

    /// The members of one group (empty when unknown).
    pub(crate) fn members(&self, scope: &str, group: &str) -> &[String] {
        self.groups.get(scope).and_then(|g| g.get(group)).map_or(&[], Vec::as_slice)
    }
}

/// What moved in one group between two states: pids that joined and pids
/// that left, one entry per join (multiset difference).
pub(crate) fn group_diff(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    let mut left: Vec<String> = before.to_vec();
    let mut joined = Vec::new();
    for p in after {
        match left.iter().position(|x| x == p) {
            Some(i) => {
                left.swap_remove(i);
            }
            None => joined.push(p.clone()),
        }
    }
    (joined, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(g: &str, p: &str) -> Change {
        Change::Join { scope: "s".into(), group: g.into(), pid: p.into() }
    }

    fn leave(g: &str, p: &str, all: bool) -> Change {
        Change::Leave { scope: "s".into(), group: g.into(), pid: p.into(), all }
    }

    #[test]
    fn joins_count_and_leaves_undo_them_one_at_a_time() {
        let mut s = OriginState::default();
        s.apply(&join("g", "<a.0.1>"));
        s.apply(&join("g", "<a.0.1>"));
        s.apply(&join("g", "<a.0.2>"));
        assert_eq!(s.members("s", "g"), ["<a.0.1>", "<a.0.1>", "<a.0.2>"]);
        assert_eq!(s.apply(&leave("g", "<a.0.1>", false)), 1);
        assert_eq!(s.members("s", "g"), ["<a.0.1>", "<a.0.2>"]);
        assert_eq!(s.apply(&leave("g", "<a.0.9>", false)), 0, "a stranger leaving changes nothing");
        assert_eq!(s.apply(&leave("g", "<a.0.1>", true)), 1);
        assert_eq!(s.apply(&leave("g", "<a.0.2>", true)), 1);
        assert!(s.groups.is_empty(), "empty groups and scopes are dropped: {s:?}");
    }

    #[test]
    fn names_bind_and_unbind() {
        let mut s = OriginState::default();
        let b = Binding { pid: "<a.0.1>".into(), at: 5 };
        s.apply(&Change::Bind { name: "svc".into(), binding: b.clone() });
        assert_eq!(s.names.get("svc"), Some(&b));
        assert_eq!(s.apply(&Change::Unbind { name: "svc".into() }), 1);
        assert_eq!(s.apply(&Change::Unbind { name: "svc".into() }), 0);
    }

    #[test]
    fn diff_is_a_multiset_difference() {
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (joined, left) = group_diff(&v(&["a", "a", "b"]), &v(&["a", "c"]));
        assert_eq!(joined, v(&["c"]));
        let mut left = left;
        left.sort();
        assert_eq!(left, v(&["a", "b"]));
        assert_eq!(group_diff(&v(&["a"]), &v(&["a"])), (vec![], vec![]));
    }
}
