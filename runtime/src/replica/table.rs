//! The node's whole view of process groups and EVENTUAL names: its own
//! state, its copies of every other node's, and who watches which group.
//!
//! A pure core: every operation takes its inputs (including the time for
//! name registrations) and returns [`Effects`], the numbered change batch
//! to send to peers, the events to deliver to watching processes and the
//! names to revoke. The service in `service.rs` does the sending; tests
//! here drive several tables by hand.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::book::{self, Position, Verdict};
use super::state::{Binding, Change, OriginState, group_diff};

/// Per-scope limits from the `pg.scope` entry; 0 means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Distinct groups with members anywhere in the cluster.
    pub max_groups: usize,
    /// Members of one group, counting every join.
    pub max_members: usize,
}

/// Why a group call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PgError {
    /// No `pg.scope` entry declares it.
    #[error("pg scope not found: {0}")]
    NoScope(String),
    /// The caller is in none of the groups it asked to leave.
    #[error("not a member of {0}")]
    NotMember(String),
    /// The scope's `max_groups` would be exceeded.
    #[error("pg scope {scope}: max_groups ({limit}) reached")]
    TooManyGroups {
        /// The scope.
        scope: String,
        /// Its limit.
        limit: usize,
    },
    /// The group's `max_members_per_group` would be exceeded.
    #[error("pg group {group}: max_members_per_group ({limit}) reached")]
    TooManyMembers {
        /// The group.
        group: String,
        /// Its limit.
        limit: usize,
    },
}

/// A process watching one group, or (`group: None`) a whole scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sub {
    /// The watching process.
    pub pid: String,
    /// The scope.
    pub scope: String,
    /// The group, or every group of the scope.
    pub group: Option<String>,
}

/// One event for one watcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupEvent {
    /// The subscription it belongs to.
    pub sub: u64,
    /// The watching process.
    pub to: String,
    /// The group.
    pub group: String,
    /// Joined (true) or left.
    pub joined: bool,
    /// The processes, once per join.
    pub pids: Vec<String>,
}

/// What an operation asks the node to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Effects {
    /// Changes to this node's own state, numbered, for every peer.
    pub delta: Option<(u64, Vec<Change>)>,
    /// Events for watching processes, in order.
    pub events: Vec<GroupEvent>,
    /// Local processes that lost an EVENTUAL name to an earlier
    /// registration elsewhere: `(pid, name)`.
    pub revoked: Vec<(String, String)>,
    /// The sender's snapshot is needed (something was missed).
    pub pull: bool,
}

/// A copy of another node's state.
#[derive(Debug)]
struct Remote {
    pos: Position,
    state: OriginState,
}

/// Groups and names, as one node sees them.
#[derive(Debug)]
pub(crate) struct Table {
    node: String,
    generation: u64,
    seq: u64,
    local: OriginState,
    remotes: BTreeMap<String, Remote>,
    scopes: HashMap<String, Limits>,
    subs: HashMap<u64, Sub>,
}

impl Table {
    /// An empty view for node `node` in incarnation `generation`.
    pub(crate) fn new(node: &str, generation: u64) -> Table {
        Table {
            node: node.to_owned(),
            generation,
            seq: 0,
            local: OriginState::default(),
            remotes: BTreeMap::new(),
            scopes: HashMap::new(),
            subs: HashMap::new(),
        }
    }

    /// Declares a scope (a `pg.scope` entry).
    pub(crate) fn declare(&mut self, scope: &str, limits: Limits) {
        self.scopes.insert(scope.to_owned(), limits);
    }

    /// Whether `scope` is declared.
    pub(crate) fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains_key(scope)
    }

    /// This node's incarnation and the number of its last change.
    pub(crate) fn position(&self) -> Position {
        Position { generation: self.generation, seq: self.seq }
    }

    /// This node's state, for a peer that needs all of it.
    pub(crate) fn snapshot(&self) -> (Position, OriginState) {
        (self.position(), self.local.clone())
    }

    /// The nodes whose state this node holds a copy of.
    #[cfg(test)]
    pub(crate) fn remote_nodes(&self) -> Vec<String> {
        self.remotes.keys().cloned().collect()
    }

    // ---- groups -----------------------------------------------------------

    /// `pid` joins each of `groups` once more.
    pub(crate) fn join(&mut self, scope: &str, groups: &[String], pid: &str) -> Result<Effects, PgError> {
        let limits = *self.scopes.get(scope).ok_or_else(|| PgError::NoScope(scope.to_owned()))?;
        if limits.max_groups > 0 {
            let known = self.which_groups(scope);
            let new: BTreeSet<&String> = groups.iter().filter(|g| !known.contains(*g)).collect();
            if known.len() + new.len() > limits.max_groups {
                return Err(PgError::TooManyGroups { scope: scope.to_owned(), limit: limits.max_groups });
            }
        }
        if limits.max_members > 0 {
            for g in groups {
                let adding = groups.iter().filter(|x| *x == g).count();
                if self.members(scope, g).len() + adding > limits.max_members {
                    return Err(PgError::TooManyMembers { group: g.clone(), limit: limits.max_members });
                }
            }
        }
        let changes = groups
            .iter()
            .map(|g| Change::Join { scope: scope.to_owned(), group: g.clone(), pid: pid.to_owned() })
            .collect();
        Ok(self.commit(changes))
    }

    /// `pid` leaves each of `groups` once; refused only when it is in none.
    pub(crate) fn leave(&mut self, scope: &str, groups: &[String], pid: &str) -> Result<Effects, PgError> {
        if !self.scopes.contains_key(scope) {
            return Err(PgError::NoScope(scope.to_owned()));
        }
        let changes: Vec<Change> = groups
            .iter()
            .filter(|g| self.local.members(scope, g).iter().any(|p| p == pid))
            .map(|g| Change::Leave { scope: scope.to_owned(), group: g.clone(), pid: pid.to_owned(), all: false })
            .collect();
        if changes.is_empty() {
            return Err(PgError::NotMember(groups.join(", ")));
        }
        Ok(self.commit(changes))
    }

    /// Process `pid` of this node exited: it leaves every group, its
    /// EVENTUAL names go and its subscriptions end.
    pub(crate) fn exit(&mut self, pid: &str) -> Effects {
        self.subs.retain(|_, s| s.pid != pid);
        let mut changes = Vec::new();
        for (scope, groups) in &self.local.groups {
            for (group, members) in groups {
                if members.iter().any(|p| p == pid) {
                    changes.push(Change::Leave {
                        scope: scope.clone(),
                        group: group.clone(),
                        pid: pid.to_owned(),
                        all: true,
                    });
                }
            }
        }
        for (name, b) in &self.local.names {
            if b.pid == pid {
                changes.push(Change::Unbind { name: name.clone() });
            }
        }
        if changes.is_empty() { Effects::default() } else { self.commit(changes) }
    }

    /// `g:release()`: `pid` leaves every group of `scope` and its
    /// subscriptions there end.
    pub(crate) fn release(&mut self, scope: &str, pid: &str) -> Effects {
        self.subs.retain(|_, s| s.pid != pid || s.scope != scope);
        let changes: Vec<Change> = self
            .local
            .groups
            .get(scope)
            .map(|groups| {
                groups
                    .iter()
                    .filter(|(_, members)| members.iter().any(|p| p == pid))
                    .map(|(g, _)| Change::Leave {
                        scope: scope.to_owned(),
                        group: g.clone(),
                        pid: pid.to_owned(),
                        all: true,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if changes.is_empty() { Effects::default() } else { self.commit(changes) }
    }

    /// Every member of `group`, this node's first, once per join.
    pub(crate) fn members(&self, scope: &str, group: &str) -> Vec<String> {
        let mut all = self.local.members(scope, group).to_vec();
        for r in self.remotes.values() {
            all.extend_from_slice(r.state.members(scope, group));
        }
        all
    }

    /// The members of `group` on this node.
    pub(crate) fn local_members(&self, scope: &str, group: &str) -> Vec<String> {
        self.local.members(scope, group).to_vec()
    }

    /// The groups of `scope` with members anywhere, sorted.
    pub(crate) fn which_groups(&self, scope: &str) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.local_groups(scope);
        for r in self.remotes.values() {
            if let Some(g) = r.state.groups.get(scope) {
                names.extend(g.keys().cloned());
            }
        }
        names
    }

    /// The groups of `scope` with members on this node, sorted.
    pub(crate) fn local_groups(&self, scope: &str) -> BTreeSet<String> {
        self.local.groups.get(scope).map(|g| g.keys().cloned().collect()).unwrap_or_default()
    }

    /// Starts subscription `id` of `pid` to `group` (or the whole scope)
    /// and returns what it starts from: the group's members, or every
    /// group with its members. Taken under one borrow of the table, so no
    /// change falls between the snapshot and the first event.
    pub(crate) fn watch(
        &mut self,
        id: u64,
        pid: &str,
        scope: &str,
        group: Option<&str>,
    ) -> Result<BTreeMap<String, Vec<String>>, PgError> {
        if !self.scopes.contains_key(scope) {
            return Err(PgError::NoScope(scope.to_owned()));
        }
        let snapshot = match group {
            Some(g) => BTreeMap::from([(g.to_owned(), self.members(scope, g))]),
            None => self.which_groups(scope).into_iter().map(|g| (g.clone(), self.members(scope, &g))).collect(),
        };
        self.subs.insert(id, Sub { pid: pid.to_owned(), scope: scope.to_owned(), group: group.map(str::to_owned) });
        Ok(snapshot)
    }

    /// Ends subscription `id` if it is `pid`'s.
    pub(crate) fn unwatch(&mut self, id: u64, pid: &str) -> bool {
        if self.subs.get(&id).is_some_and(|s| s.pid == pid) {
            self.subs.remove(&id);
            return true;
        }
        false
    }

    /// Figures for `/metrics`: groups with members anywhere (over all
    /// scopes), memberships of this node's processes, distinct EVENTUAL
    /// names, and group subscriptions.
    pub(crate) fn figures(&self) -> [usize; 4] {
        let mut groups: BTreeSet<(&String, &String)> = BTreeSet::new();
        let mut names: BTreeSet<&String> = self.local.names.keys().collect();
        for s in std::iter::once(&self.local).chain(self.remotes.values().map(|r| &r.state)) {
            for (scope, gs) in &s.groups {
                groups.extend(gs.keys().map(|g| (scope, g)));
            }
            names.extend(s.names.keys());
        }
        let local: usize = self.local.groups.values().flat_map(|g| g.values()).map(Vec::len).sum();
        [groups.len(), local, names.len(), self.subs.len()]
    }

    // ---- changes ------------------------------------------------------------

    /// Applies local changes, numbers them as one batch and collects the
    /// events they cause.
    pub(super) fn commit(&mut self, changes: Vec<Change>) -> Effects {
        let mut fx = Effects::default();
        for c in &changes {
            if self.local.apply(c) > 0 {
                self.events_for(c, &mut fx);
            }
        }
        self.seq += 1;
        fx.delta = Some((self.seq, changes));
        fx
    }

    /// Node `node` sent its change batch `seq` of incarnation `generation`.
    pub(crate) fn on_delta(&mut self, node: &str, generation: u64, seq: u64, changes: &[Change]) -> Effects {
        let held = self.remotes.get(node).map(|r| r.pos);
        let mut fx = Effects::default();
        match book::on_change(held, generation, seq) {
            Verdict::Apply => {}
            Verdict::Skip => return fx,
            Verdict::Pull => {
                fx.pull = true;
                return fx;
            }
        }
        let remote = self.remotes.get_mut(node).expect("held");
        remote.pos.seq = seq;
        let mut names = Vec::new();
        let mut moved = Vec::new();
        for c in changes {
            let n = remote.state.apply(c);
            if n == 0 {
                continue;
            }
            match c {
                Change::Bind { name, .. } => names.push(name.clone()),
                Change::Leave { all: true, scope, group, pid } => {
                    // Report one leave per join it removed.
                    let leave =
                        Change::Leave { scope: scope.clone(), group: group.clone(), pid: pid.clone(), all: false };
                    moved.extend(std::iter::repeat_n(leave, n));
                }
                other => moved.push(other.clone()),
            }
        }
        for c in &moved {
            self.events_for(c, &mut fx);
        }
        self.settle_names(&names, &mut fx);
        fx
    }

    /// Node `node` sent its whole state as of change `seq`.
    pub(crate) fn on_snapshot(&mut self, node: &str, generation: u64, seq: u64, state: OriginState) -> Effects {
        let held = self.remotes.get(node).map(|r| r.pos);
        let mut fx = Effects::default();
        if book::on_snapshot(held, generation, seq) != Verdict::Apply {
            return fx;
        }
        let pos = Position { generation, seq };
        let before = self.remotes.insert(node.to_owned(), Remote { pos, state }).map(|r| r.state).unwrap_or_default();
        let after = &self.remotes[node].state;
        let names: Vec<String> = after.names.keys().cloned().collect();
        let diff = diff_groups(&before, after);
        self.emit_diff(diff, &mut fx);
        self.settle_names(&names, &mut fx);
        fx
    }

    /// Node `node` says where it stands; true when a snapshot is needed.
    pub(crate) fn on_digest(&self, node: &str, generation: u64, seq: u64) -> bool {
        book::on_digest(self.remotes.get(node).map(|r| r.pos), generation, seq) == Verdict::Pull
    }

    /// Node `node` is gone: its members leave, its names go.
    pub(crate) fn node_down(&mut self, node: &str) -> Effects {
        let mut fx = Effects::default();
        if let Some(r) = self.remotes.remove(node) {
            let diff = diff_groups(&r.state, &OriginState::default());
            self.emit_diff(diff, &mut fx);
        }
        fx
    }

    /// Events for one applied group change.
    fn events_for(&self, change: &Change, fx: &mut Effects) {
        let (scope, group, pid, joined) = match change {
            Change::Join { scope, group, pid } => (scope, group, pid, true),
            Change::Leave { scope, group, pid, .. } => (scope, group, pid, false),
            Change::Bind { .. } | Change::Unbind { .. } => return,
        };
        self.notify(scope, group, joined, vec![pid.clone()], fx);
    }

    fn emit_diff(&self, diff: Vec<(String, String, Vec<String>, Vec<String>)>, fx: &mut Effects) {
        for (scope, group, joined, left) in diff {
            if !left.is_empty() {
                self.notify(&scope, &group, false, left, fx);
            }
            if !joined.is_empty() {
                self.notify(&scope, &group, true, joined, fx);
            }
        }
    }

    fn notify(&self, scope: &str, group: &str, joined: bool, pids: Vec<String>, fx: &mut Effects) {
        let mut ids: Vec<u64> = self
            .subs
            .iter()
            .filter(|(_, s)| s.scope == scope && s.group.as_deref().is_none_or(|g| g == group))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            let to = self.subs[&id].pid.clone();
            fx.events.push(GroupEvent { sub: id, to, group: group.to_owned(), joined, pids: pids.clone() });
        }
    }

    // ---- EVENTUAL names (see names.rs) --------------------------------------

    pub(super) fn local_state(&self) -> &OriginState {
        &self.local
    }

    pub(super) fn node(&self) -> &str {
        &self.node
    }

    /// Every binding of `name` with its owner: this node's, then the copies.
    pub(super) fn bindings<'a>(&'a self, name: &str) -> impl Iterator<Item = (&'a str, &'a Binding)> + 'a {
        let name = name.to_owned();
        let local = self.local.names.get(&name).map(|b| (self.node.as_str(), b));
        let remote = self.remotes.iter().filter_map(move |(n, r)| r.state.names.get(&name).map(|b| (n.as_str(), b)));
        local.into_iter().chain(remote)
    }
}

/// What moved in every group between two states of one owner:
/// `(scope, group, joined, left)`.
fn diff_groups(before: &OriginState, after: &OriginState) -> Vec<(String, String, Vec<String>, Vec<String>)> {
    let mut keys: BTreeSet<(&String, &String)> = BTreeSet::new();
    for s in [before, after] {
        for (scope, groups) in &s.groups {
            keys.extend(groups.keys().map(|g| (scope, g)));
        }
    }
    keys.into_iter()
        .filter_map(|(scope, group)| {
            let (joined, left) = group_diff(before.members(scope, group), after.members(scope, group));
            (!joined.is_empty() || !left.is_empty()).then(|| (scope.clone(), group.clone(), joined, left))
        })
        .collect()
}

#[cfg(test)]
#[path = "table_test.rs"]
mod tests;
