//! The node's LOCAL name registry: name → PID, shared by all workers.
//!
//! Names are released when their process exits (`release`), so a reverse
//! index from PID to names is kept for the processes that have any.

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

/// Why a registration failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Another PID holds the name; nothing changed.
    #[error("name already registered")]
    Taken,
}

/// LOCAL-scope names of one node.
#[derive(Default)]
pub struct Registry {
    names: DashMap<String, String>,
    by_pid: DashMap<String, Vec<String>>,
}

impl Registry {
    /// Binds `name` to `pid`. Binding the same pair again succeeds.
    pub fn register(&self, name: &str, pid: &str) -> Result<(), RegistryError> {
        match self.names.entry(name.to_string()) {
            Entry::Occupied(e) if e.get() == pid => return Ok(()),
            Entry::Occupied(_) => return Err(RegistryError::Taken),
            Entry::Vacant(v) => {
                v.insert(pid.to_string());
            }
        }
        self.by_pid.entry(pid.to_string()).or_default().push(name.to_string());
        Ok(())
    }

    /// The PID bound to `name`.
    pub fn lookup(&self, name: &str) -> Option<String> {
        self.names.get(name).map(|p| p.value().clone())
    }

    /// Removes `name`; `false` when it was not bound.
    pub fn unregister(&self, name: &str) -> bool {
        let Some((_, pid)) = self.names.remove(name) else { return false };
        if let Some(mut names) = self.by_pid.get_mut(&pid) {
            names.retain(|n| n != name);
        }
        self.by_pid.remove_if(&pid, |_, v| v.is_empty());
        true
    }

    /// Drops `name` if it is still bound to `pid`.
    pub fn unregister_if(&self, name: &str, pid: &str) {
        if self.names.remove_if(name, |_, p| p == pid).is_some() {
            self.by_pid.remove(pid);
        }
    }

    /// Releases every name of an exited process.
    pub fn release(&self, pid: &str) {
        if let Some((_, names)) = self.by_pid.remove(pid) {
            for n in names {
                self.names.remove_if(&n, |_, p| p == pid);
            }
        }
    }

    /// Number of bound names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name is bound.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_registration_wins_and_same_pid_is_idempotent() {
        let r = Registry::default();
        assert_eq!(r.register("db", "{n@h|0x00001}"), Ok(()));
        assert_eq!(r.register("db", "{n@h|0x00001}"), Ok(()));
        assert_eq!(r.register("db", "{n@h|0x00002}"), Err(RegistryError::Taken));
        assert_eq!(r.lookup("db").as_deref(), Some("{n@h|0x00001}"));
    }

    #[test]
    fn release_on_exit_frees_all_names_of_that_pid_only() {
        let r = Registry::default();
        r.register("a", "p1").unwrap();
        r.register("b", "p1").unwrap();
        r.register("c", "p2").unwrap();
        r.release("p1");
        assert_eq!(r.lookup("a"), None);
        assert_eq!(r.lookup("b"), None);
        assert_eq!(r.lookup("c").as_deref(), Some("p2"));
        assert!(r.unregister("c"));
        assert!(!r.unregister("c"));
        assert!(r.is_empty());
    }
}
