//! An in-memory copy of the `name/` records of the state machine.
//!
//! Every send by name on a Raft node resolves the Raft-backed names first.
//! Reading redb for that costs a read transaction per send. This index
//! answers in one hash lookup. It is kept in step with the applied state:
//! changed after each applied batch commits, rebuilt when a snapshot is
//! installed, and loaded when the node opens its state.
//!
//! Client nodes keep no replica. They follow the index of the members
//! instead (`naming/followed.rs`): a listener sees every change, under the
//! index's lock, so a full copy taken under the same lock never passes a
//! change.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The prefix of name records in the replicated state.
pub(crate) const PREFIX: &str = "name/";

/// One change to a name: its log index, and the pid it is now bound to
/// (`None`: removed).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct NameChange {
    /// The name (without the prefix).
    pub name: String,
    /// The log index of the write that made the change.
    pub index: u64,
    /// The bound pid, or `None` when the name was removed.
    pub pid: Option<String>,
}

/// Sees every batch of changes, in apply order.
pub(crate) type Listener = Box<dyn Fn(&[NameChange]) + Send + Sync>;

#[derive(Default)]
struct Inner {
    map: HashMap<String, (String, u64)>,
    applied: u64,
    listener: Option<Listener>,
}

/// Name → (pid, version) for the records under [`PREFIX`].
#[derive(Clone, Default)]
pub(crate) struct NameIndex(Arc<RwLock<Inner>>);

/// A record change as the state machine reports it: key, then the value
/// and version written, or `None` for a removal.
pub(crate) type IndexChange = (String, Option<(Vec<u8>, u64)>);

fn to_change(key: String, change: Option<(Vec<u8>, u64)>, index: u64) -> Option<NameChange> {
    let name = key.strip_prefix(PREFIX)?.to_owned();
    Some(match change {
        Some((v, version)) => NameChange { name, index: version, pid: String::from_utf8(v).ok() },
        None => NameChange { name, index, pid: None },
    })
}

impl NameIndex {
    /// The pid and version `name` is bound to.
    pub(crate) fn get(&self, name: &str) -> Option<(String, u64)> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).map.get(name).cloned()
    }

    /// Applies the changes of one committed batch that ended at log index
    /// `applied`, in order. Keys outside [`PREFIX`] are ignored.
    pub(crate) fn apply(&self, applied: u64, changes: Vec<IndexChange>) {
        let mut inner = self.0.write().unwrap_or_else(|e| e.into_inner());
        inner.applied = applied;
        let changes: Vec<NameChange> = changes.into_iter().filter_map(|(k, c)| to_change(k, c, applied)).collect();
        if changes.is_empty() {
            return;
        }
        for c in &changes {
            match &c.pid {
                Some(pid) => {
                    inner.map.insert(c.name.clone(), (pid.clone(), c.index));
                }
                None => {
                    inner.map.remove(&c.name);
                }
            }
        }
        if let Some(listen) = &inner.listener {
            listen(&changes);
        }
    }

    /// Replaces everything (a snapshot was installed, or the state opened)
    /// as of log index `applied`.
    pub(crate) fn reset(&self, applied: u64, records: Vec<IndexChange>) {
        {
            let mut inner = self.0.write().unwrap_or_else(|e| e.into_inner());
            inner.map.clear();
        }
        // Followers learn of names a snapshot dropped from their next full
        // copy (see `naming/followed.rs`).
        self.apply(applied, records);
    }

    /// Installs the listener (the Raft service forwards to client nodes).
    pub(crate) fn listen(&self, listener: Listener) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).listener = Some(listener);
    }

    /// Runs `f` on a full copy and the index it is current as of, while no
    /// change can be applied, so that whatever `f` queues comes before the
    /// next change the listener sees.
    pub(crate) fn with_copy<R>(&self, f: impl FnOnce(u64, Vec<NameChange>) -> R) -> R {
        let inner = self.0.read().unwrap_or_else(|e| e.into_inner());
        let all = inner
            .map
            .iter()
            .map(|(name, (pid, index))| NameChange { name: name.clone(), index: *index, pid: Some(pid.clone()) })
            .collect();
        f(inner.applied, all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_writes_removals_and_resets() {
        let idx = NameIndex::default();
        idx.apply(
            6,
            vec![
                ("name/a".into(), Some((b"<n.0.1>".to_vec(), 3))),
                ("kv/x".into(), Some((b"ignored".to_vec(), 4))),
                ("name/b".into(), Some((b"<n.0.2>".to_vec(), 5))),
                ("name/b".into(), None),
            ],
        );
        assert_eq!(idx.get("a"), Some(("<n.0.1>".into(), 3)));
        assert_eq!(idx.get("b"), None);
        assert_eq!(idx.get("x"), None);
        idx.reset(9, vec![("name/c".into(), Some((b"<n.0.3>".to_vec(), 9)))]);
        assert_eq!((idx.get("a"), idx.get("c")), (None, Some(("<n.0.3>".into(), 9))));
        idx.with_copy(|applied, all| {
            assert_eq!(applied, 9);
            assert_eq!(all, [NameChange { name: "c".into(), index: 9, pid: Some("<n.0.3>".into()) }]);
        });
    }

    #[test]
    fn the_listener_sees_each_batch_with_removals_at_their_index() {
        let idx = NameIndex::default();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        idx.listen(Box::new(move |c| s.lock().unwrap().extend_from_slice(c)));
        idx.apply(4, vec![("name/a".into(), Some((b"p".to_vec(), 4)))]);
        idx.apply(7, vec![("kv/y".into(), None)]);
        idx.apply(8, vec![("name/a".into(), None)]);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                NameChange { name: "a".into(), index: 4, pid: Some("p".into()) },
                NameChange { name: "a".into(), index: 8, pid: None },
            ]
        );
    }
}
