//! EVENTUAL names on the [`Table`]: each node publishes the names of its
//! own processes; when two nodes bound one name, the earlier registration
//! wins everywhere (the owner's node name breaks a tie), and the owner of
//! the losing binding drops it and tells its process.
//!
//! Every node applies the same rule to the same bindings, so once the
//! copies agree every node resolves the name to the same process; until
//! then two nodes may briefly disagree, which is what EVENTUAL promises.

use super::state::{Binding, Change};
use super::table::{Effects, Table};

/// Why an EVENTUAL registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NameError {
    /// Another process holds the name (here or on another node).
    #[error("name already registered: {name} (held by {holder})")]
    Taken {
        /// The name.
        name: String,
        /// The holder's pid.
        holder: String,
    },
}

impl Table {
    /// Binds `name` to `pid`, a process of this node, registered at `at`
    /// (wall-clock ns). Binding the same pair again succeeds and changes
    /// nothing.
    pub(crate) fn bind(&mut self, name: &str, pid: &str, at: u64) -> Result<Effects, NameError> {
        if let Some((_, b)) = self.winner(name) {
            if b.pid == pid {
                return Ok(Effects::default());
            }
            return Err(NameError::Taken { name: name.to_owned(), holder: b.pid.clone() });
        }
        let binding = Binding { pid: pid.to_owned(), at };
        Ok(self.commit(vec![Change::Bind { name: name.to_owned(), binding }]))
    }

    /// Drops this node's binding of `name`; `None` when it holds none.
    pub(crate) fn unbind(&mut self, name: &str) -> Option<Effects> {
        self.local_state().names.get(name)?;
        Some(self.commit(vec![Change::Unbind { name: name.to_owned() }]))
    }

    /// The process `name` resolves to: the winning binding.
    pub(crate) fn resolve(&self, name: &str) -> Option<&str> {
        self.winner(name).map(|(_, b)| b.pid.as_str())
    }

    /// Whether this node binds `name` to a process other than `pid`.
    pub(crate) fn conflicts(&self, name: &str, pid: &str) -> bool {
        self.bindings(name).any(|(_, b)| b.pid != pid)
    }

    /// The earliest binding of `name` and its owner.
    fn winner(&self, name: &str) -> Option<(&str, &Binding)> {
        self.bindings(name).min_by(|(na, a), (nb, b)| (a.at, *na).cmp(&(b.at, *nb)))
    }

    /// After copies changed, drops each local binding of `names` that an
    /// earlier registration elsewhere beats, and reports its process.
    pub(super) fn settle_names(&mut self, names: &[String], fx: &mut Effects) {
        let mut lost = Vec::new();
        for name in names {
            let Some(mine) = self.local_state().names.get(name) else { continue };
            if let Some((owner, _)) = self.winner(name)
                && owner != self.node()
            {
                lost.push((mine.pid.clone(), name.clone()));
            }
        }
        if lost.is_empty() {
            return;
        }
        let changes = lost.iter().map(|(_, name)| Change::Unbind { name: name.clone() }).collect();
        let local = self.commit(changes);
        fx.delta = local.delta;
        fx.events.extend(local.events);
        fx.revoked.extend(lost);
    }
}
