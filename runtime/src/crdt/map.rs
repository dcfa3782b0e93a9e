//! One `store.kv.crdt` namespace: a last-writer-wins map.
//!
//! Every write, a delete included, is an [`Entry`] stamped with the
//! writer's hybrid logical clock and node name. Merging keeps the entry
//! with the larger `(stamp, node)`, so merging is commutative, associative
//! and idempotent: copies that have seen the same writes hold the same map
//! whatever the order, and repeating a merge changes nothing. A delete is
//! a tombstone (no value), so an older write that arrives late cannot bring
//! the key back.
//!
//! The digest is a sum of per-entry hashes, kept up to date on every
//! merge, so two nodes compare whole maps by exchanging one number.

use std::collections::BTreeMap;
use std::hash::Hasher;

use serde::{Deserialize, Serialize};
use wippy_lua_stdlib::Value;

use crate::fxhash::FxHasher;

/// One key's latest write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The value; `None` for a delete.
    pub value: Option<Value>,
    /// The writer's clock (see `clock.rs`).
    pub stamp: u64,
    /// The writer's node name: breaks a tie between equal stamps.
    pub node: String,
    /// Wall-clock ms after which the key reads as absent.
    pub expires_ms: Option<u64>,
}

impl Entry {
    /// Whether this write wins over `other`.
    pub(crate) fn beats(&self, other: &Entry) -> bool {
        (self.stamp, &self.node) > (other.stamp, &other.node)
    }

    /// Whether the key has a value at `now_ms`.
    pub(crate) fn is_live(&self, now_ms: u64) -> bool {
        self.value.is_some() && self.expires_ms.is_none_or(|e| e > now_ms)
    }

    fn hash(&self, key: &str) -> u64 {
        let mut h = FxHasher::default();
        h.write(key.as_bytes());
        h.write_u8(0xff);
        h.write_u64(self.stamp);
        h.write(self.node.as_bytes());
        h.finish()
    }
}

/// A namespace's entries, deletes included.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LwwMap {
    entries: BTreeMap<String, Entry>,
    digest: u64,
}

impl LwwMap {
    /// Merges one write; true when it won (the map changed).
    pub(crate) fn merge(&mut self, key: &str, entry: Entry) -> bool {
        match self.entries.get_mut(key) {
            Some(held) if !entry.beats(held) => false,
            Some(held) => {
                self.digest = self.digest.wrapping_sub(held.hash(key)).wrapping_add(entry.hash(key));
                *held = entry;
                true
            }
            None => {
                self.digest = self.digest.wrapping_add(entry.hash(key));
                self.entries.insert(key.to_owned(), entry);
                true
            }
        }
    }

    /// Merges another copy's entries and returns the ones of this copy
    /// that the other lacks or holds older: the answer that brings it level.
    pub(crate) fn merge_from(&mut self, theirs: Vec<(String, Entry)>) -> Vec<(String, Entry)> {
        let mut seen: BTreeMap<String, Entry> = BTreeMap::new();
        for (k, e) in theirs {
            self.merge(&k, e.clone());
            seen.insert(k, e);
        }
        self.entries
            .iter()
            .filter(|(k, mine)| seen.get(*k).is_none_or(|t| mine.beats(t)))
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect()
    }

    /// The key's entry when it has a value at `now_ms`.
    pub(crate) fn get(&self, key: &str, now_ms: u64) -> Option<&Entry> {
        self.entries.get(key).filter(|e| e.is_live(now_ms))
    }

    /// The key's entry, whatever it holds (for stamping a new write).
    pub(crate) fn raw(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Live keys starting with `prefix`, after `after`, in key order, at
    /// most `limit`; and whether more follow.
    pub(crate) fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> (Vec<(&str, &Entry)>, bool) {
        use std::ops::Bound;
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_owned()),
            _ => Bound::Included(prefix.to_owned()),
        };
        let mut rows = Vec::new();
        for (k, e) in self.entries.range((start, Bound::Unbounded)) {
            if !k.starts_with(prefix) {
                break;
            }
            if !e.is_live(now_ms) {
                continue;
            }
            if rows.len() == limit {
                return (rows, true);
            }
            rows.push((k.as_str(), e));
        }
        (rows, false)
    }

    /// Every entry, deletes included (a full copy for a peer or the disk).
    pub(crate) fn all(&self) -> Vec<(String, Entry)> {
        self.entries.iter().map(|(k, e)| (k.clone(), e.clone())).collect()
    }

    /// The sum of the entries' hashes.
    pub(crate) fn digest(&self) -> u64 {
        self.digest
    }

    /// Number of entries, deletes included.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The largest stamp held (a restarted node's clock starts past it).
    pub(crate) fn max_stamp(&self) -> u64 {
        self.entries.values().map(|e| e.stamp).max().unwrap_or(0)
    }

    /// Forgets deletes made before `deleted_before_ms` and keys expired
    /// before `expired_before_ms`: long enough ago that every copy has
    /// them too. Returns how many went.
    pub(crate) fn collect(
        &mut self,
        deleted_before_ms: u64,
        expired_before_ms: u64,
        stamp_ms: impl Fn(u64) -> u64,
    ) -> usize {
        let old: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| match (&e.value, e.expires_ms) {
                (None, _) => stamp_ms(e.stamp) < deleted_before_ms,
                (Some(_), Some(x)) => x < expired_before_ms,
                (Some(_), None) => false,
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in &old {
            if let Some(e) = self.entries.remove(k) {
                self.digest = self.digest.wrapping_sub(e.hash(k));
            }
        }
        old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(v: i64, stamp: u64, node: &str) -> Entry {
        Entry { value: Some(Value::Int(v)), stamp, node: node.into(), expires_ms: None }
    }

    fn del(stamp: u64, node: &str) -> Entry {
        Entry { value: None, stamp, node: node.into(), expires_ms: None }
    }

    #[test]
    fn the_larger_stamp_wins_whatever_the_order() {
        let writes = [("k", put(1, 10, "a")), ("k", put(2, 20, "b")), ("k", del(15, "c")), ("j", put(3, 5, "a"))];
        let mut orders = vec![writes.to_vec()];
        let mut rev = writes.to_vec();
        rev.reverse();
        orders.push(rev);
        let maps: Vec<LwwMap> = orders
            .into_iter()
            .map(|ws| {
                let mut m = LwwMap::default();
                for (k, e) in ws.iter().chain(ws.iter()) {
                    m.merge(k, e.clone());
                }
                m
            })
            .collect();
        assert_eq!(maps[0], maps[1]);
        assert_eq!(maps[0].get("k", 0).and_then(|e| e.value.clone()), Some(Value::Int(2)));
        assert_eq!(maps[0].digest(), maps[1].digest());
    }

    #[test]
    fn a_delete_hides_older_writes_and_ties_go_to_the_node_name() {
        let mut m = LwwMap::default();
        m.merge("k", put(1, 10, "a"));
        assert!(m.merge("k", del(11, "a")));
        assert!(!m.merge("k", put(9, 10, "z")), "an older write arriving late stays buried");
        assert!(m.get("k", 0).is_none());
        assert!(m.merge("k", put(2, 11, "b")), "same stamp, larger node name wins");
        assert_eq!(m.get("k", 0).and_then(|e| e.value.clone()), Some(Value::Int(2)));
    }

    #[test]
    fn a_push_pull_exchange_levels_both_copies() {
        let (mut a, mut b) = (LwwMap::default(), LwwMap::default());
        a.merge("x", put(1, 10, "a"));
        a.merge("y", put(2, 30, "a"));
        b.merge("y", put(3, 20, "b"));
        b.merge("z", del(5, "b"));
        assert_ne!(a.digest(), b.digest());
        let answer = a.merge_from(b.all());
        assert_eq!(answer.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["x", "y"]);
        b.merge_from(answer);
        assert_eq!(a, b);
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn listing_skips_deleted_and_expired_keys_and_pages() {
        let mut m = LwwMap::default();
        for (i, k) in ["a/1", "a/2", "a/3", "b/1"].iter().enumerate() {
            m.merge(k, put(i as i64, 1, "n"));
        }
        m.merge("a/2", del(2, "n"));
        m.merge("a/4", Entry { expires_ms: Some(100), ..put(9, 1, "n") });
        let keys = |rows: Vec<(&str, &Entry)>| rows.into_iter().map(|(k, _)| k.to_owned()).collect::<Vec<_>>();
        let (rows, more) = m.list("a/", None, 10, 50);
        assert_eq!((keys(rows), more), (vec!["a/1".into(), "a/3".into(), "a/4".into()], false));
        let (rows, more) = m.list("a/", None, 1, 200);
        assert_eq!((keys(rows), more), (vec!["a/1".into()], true));
        let (rows, more) = m.list("a/", Some("a/1"), 1, 200);
        assert_eq!((keys(rows), more), (vec!["a/3".into()], false));
    }

    #[test]
    fn collection_forgets_only_old_deletes_and_expired_keys() {
        let mut m = LwwMap::default();
        m.merge("old-delete", del(1, "n"));
        m.merge("new-delete", del(1000, "n"));
        m.merge("expired", Entry { expires_ms: Some(5), ..put(1, 1, "n") });
        m.merge("kept", put(1, 1, "n"));
        let mut fresh = LwwMap::default();
        fresh.merge("new-delete", del(1000, "n"));
        fresh.merge("kept", put(1, 1, "n"));
        assert_eq!(m.collect(500, 500, |s| s), 2);
        assert_eq!(m, fresh, "the digest follows removals too");
    }
}
