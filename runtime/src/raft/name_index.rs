//! An in-memory copy of the `name/` records of the state machine.
//!
//! Every send by name on a Raft node resolves the Raft-backed names first.
//! Reading redb for that costs a read transaction per send. This index
//! answers in one hash lookup. It is kept in step with the applied state:
//! changed after each applied batch commits, rebuilt when a snapshot is
//! installed, and loaded when the node opens its state.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The prefix of name records in the replicated state.
pub(crate) const PREFIX: &str = "name/";

/// Name → (pid, version) for the records under [`PREFIX`].
#[derive(Clone, Default)]
pub(crate) struct NameIndex(Arc<RwLock<HashMap<String, (String, u64)>>>);

/// One change to the index: a record written (with its value and
/// version) or removed.
pub(crate) type IndexChange = (String, Option<(Vec<u8>, u64)>);

impl NameIndex {
    /// The pid and version `name` is bound to.
    pub(crate) fn get(&self, name: &str) -> Option<(String, u64)> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// Applies the changes of one committed batch, in order. Keys outside
    /// [`PREFIX`] are ignored.
    pub(crate) fn apply(&self, changes: Vec<IndexChange>) {
        if changes.is_empty() {
            return;
        }
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        for (key, change) in changes {
            let Some(name) = key.strip_prefix(PREFIX) else { continue };
            match change.and_then(|(v, version)| String::from_utf8(v).ok().map(|pid| (pid, version))) {
                Some(binding) => {
                    map.insert(name.to_owned(), binding);
                }
                None => {
                    map.remove(name);
                }
            }
        }
    }

    /// Replaces everything (a snapshot was installed, or the state opened).
    pub(crate) fn reset(&self, records: Vec<IndexChange>) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.apply(records);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_writes_removals_and_resets() {
        let idx = NameIndex::default();
        idx.apply(vec![
            ("name/a".into(), Some((b"<n.0.1>".to_vec(), 3))),
            ("kv/x".into(), Some((b"ignored".to_vec(), 4))),
            ("name/b".into(), Some((b"<n.0.2>".to_vec(), 5))),
            ("name/b".into(), None),
        ]);
        assert_eq!(idx.get("a"), Some(("<n.0.1>".into(), 3)));
        assert_eq!(idx.get("b"), None);
        assert_eq!(idx.get("x"), None);
        idx.reset(vec![("name/c".into(), Some((b"<n.0.3>".to_vec(), 9)))]);
        assert_eq!((idx.get("a"), idx.get("c")), (None, Some(("<n.0.3>".into(), 9))));
    }
}
