//! The node's `store.kv.crdt` namespaces: local reads and writes for
//! processes, the deltas and anti-entropy exchanges with peers, and the
//! snapshots of durable namespaces.
//!
//! A write changes this node's copy at once and goes to every live peer as
//! a delta. A delta lost to a full queue or a partition is repaired by the
//! digest exchange in `on_wire`: each node now and then tells its peers
//! the digest of each namespace, and a peer whose digest differs answers
//! with its entries, which the first node merges and answers in turn with
//! what the peer lacked. One round trip levels both copies.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

use wippy_lua_stdlib::{HostError, StoreOp, Value};

use super::clock::{Clock, stamp_ms};
use super::disk;
use super::map::{Entry, LwwMap};
use super::wire::KvWire;

/// Deletes are forgotten this long after they were made; a node that was
/// away longer may bring a deleted key back.
const DELETED_RETENTION_MS: u64 = 24 * 3600 * 1000;
/// Expired keys are forgotten this long after they expired.
const EXPIRED_RETENTION_MS: u64 = 3600 * 1000;

/// What a write asks the caller to send to every peer.
pub(crate) type Outgoing = Option<KvWire>;

#[derive(Default)]
struct Inner {
    maps: HashMap<String, LwwMap>,
    clock: Clock,
    /// Durable namespaces changed since their last snapshot.
    dirty: HashSet<String>,
}

/// All `store.kv.crdt` namespaces of this node.
pub(crate) struct CrdtStores {
    node: String,
    inner: Mutex<Inner>,
    /// Namespaces declared here, and whether each is durable.
    declared: Mutex<HashMap<String, bool>>,
    /// `<data_dir>/_sys/kvcrdt`, where durable namespaces are kept.
    dir: Mutex<Option<PathBuf>>,
}

impl CrdtStores {
    /// No namespaces yet.
    pub(crate) fn new(node: &str) -> CrdtStores {
        CrdtStores { node: node.to_owned(), inner: Mutex::default(), declared: Mutex::default(), dir: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Declares namespace `ns`; a durable one is loaded from `dir` when a
    /// snapshot is there. An unreadable snapshot is set aside and
    /// reported; the namespace then starts empty and fills from peers.
    pub(crate) fn declare(&self, ns: &str, durable: bool, dir: Option<&std::path::Path>) {
        self.declared.lock().unwrap_or_else(|e| e.into_inner()).insert(ns.to_owned(), durable);
        let mut inner = self.lock();
        inner.maps.entry(ns.to_owned()).or_default();
        let (true, Some(dir)) = (durable, dir) else { return };
        *self.dir.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.to_owned());
        match disk::load(dir, ns) {
            Ok(Some(entries)) => {
                let n = entries.len();
                let map = inner.maps.entry(ns.to_owned()).or_default();
                for (k, e) in entries {
                    map.merge(&k, e);
                }
                let max = map.max_stamp();
                inner.clock.observe(max);
                tracing::info!(namespace = %ns, entries = n, "kv.crdt: snapshot loaded");
            }
            Ok(None) => {}
            Err(e) => {
                let aside = disk::set_aside(dir, ns);
                tracing::error!(error = %e, moved_to = ?aside, "kv.crdt: snapshot not loaded; starting empty");
            }
        }
    }

    /// Serves one call on namespace `ns`; returns the answer and what to
    /// send to peers.
    pub(crate) fn execute(&self, ns: &str, op: StoreOp, now_ms: u64) -> Result<(Value, Outgoing), HostError> {
        let mut inner = self.lock();
        let Inner { maps, clock, dirty } = &mut *inner;
        let map = maps.get_mut(ns).ok_or_else(|| HostError::not_found(format!("no kv.crdt namespace {ns}")))?;
        let read = |v| Ok((v, None));
        match op {
            StoreOp::Get { key } => match map.get(&key, now_ms) {
                Some(e) => read(e.value.clone().unwrap_or(Value::Nil)),
                None => Err(HostError::not_found(format!("key not found: {key}"))),
            },
            StoreOp::Entry { key } => match map.get(&key, now_ms) {
                Some(e) => read(entry_value(&key, e)),
                None => Err(HostError::not_found(format!("key not found: {key}"))),
            },
            StoreOp::Has { key } => read(Value::Bool(map.get(&key, now_ms).is_some())),
            StoreOp::List { prefix, after, limit } => {
                let (rows, more) = map.list(&prefix, after.as_deref(), limit, now_ms);
                let cursor = match rows.last() {
                    Some((k, _)) if more => Value::str(*k),
                    _ => Value::Nil,
                };
                let items = rows.iter().map(|(k, e)| entry_value(k, e)).collect();
                read(Value::Map(vec![
                    (Value::str("items"), Value::Array(items)),
                    (Value::str("cursor"), cursor),
                    (Value::str("has_more"), Value::Bool(more)),
                ]))
            }
            StoreOp::Set { key, value, ttl_ms } => {
                let e = stamp_write(map, clock, &self.node, &key, Some(value), ttl_ms.map(|t| now_ms + t), now_ms);
                dirty.insert(ns.to_owned());
                Ok((Value::Bool(true), delta(ns, key, e)))
            }
            StoreOp::Put { key, value, ttl_ms, cond } => {
                if cond != wippy_lua_stdlib::PutCond::Always {
                    return Err(HostError::invalid(
                        "kv.crdt stores take no put conditions (only_if_absent, if_version): use a kv.raft store",
                    ));
                }
                let e = stamp_write(map, clock, &self.node, &key, Some(value), ttl_ms.map(|t| now_ms + t), now_ms);
                dirty.insert(ns.to_owned());
                let answer = entry_value(&key, &e);
                Ok((answer, delta(ns, key, e)))
            }
            StoreOp::Delete { key } => {
                let existed = map.get(&key, now_ms).is_some();
                if map.raw(&key).is_none() {
                    return read(Value::Bool(false));
                }
                let e = stamp_write(map, clock, &self.node, &key, None, None, now_ms);
                dirty.insert(ns.to_owned());
                Ok((Value::Bool(existed), delta(ns, key, e)))
            }
        }
    }

    /// Handles one message from `peer`; returns the answers to send it.
    pub(crate) fn on_wire(&self, wire: KvWire) -> Vec<KvWire> {
        // Lock order: `declared`, then `inner`; nothing takes them the other way.
        let declared = self.declared.lock().unwrap_or_else(|e| e.into_inner());
        let mut inner = self.lock();
        let Inner { maps, clock, dirty } = &mut *inner;
        let mut out = Vec::new();
        match wire {
            KvWire::Delta { ns, entries } => {
                let Some(map) = maps.get_mut(&ns) else { return out };
                let mut changed = false;
                for (k, e) in entries {
                    clock.observe(e.stamp);
                    changed |= map.merge(&k, e);
                }
                if changed {
                    dirty.insert(ns);
                }
            }
            KvWire::Digest { digests } => {
                let theirs: HashMap<String, u64> = digests.into_iter().collect();
                for ns in declared.keys() {
                    let Some(map) = maps.get(ns) else { continue };
                    if theirs.get(ns).copied().unwrap_or(0) != map.digest() {
                        out.push(KvWire::State { ns: ns.clone(), entries: map.all(), answer: true });
                    }
                }
            }
            KvWire::State { ns, entries, answer } => {
                let Some(map) = maps.get_mut(&ns) else { return out };
                let before = map.digest();
                for (_, e) in &entries {
                    clock.observe(e.stamp);
                }
                let back = map.merge_from(entries);
                if map.digest() != before {
                    dirty.insert(ns.clone());
                }
                if answer && !back.is_empty() {
                    out.push(KvWire::State { ns, entries: back, answer: false });
                }
            }
        }
        out
    }

    /// The digest of every declared namespace, for a peer.
    pub(crate) fn digest(&self) -> KvWire {
        let inner = self.lock();
        let mut digests: Vec<(String, u64)> = inner.maps.iter().map(|(ns, m)| (ns.clone(), m.digest())).collect();
        digests.sort();
        KvWire::Digest { digests }
    }

    /// Forgets old deletes and long-expired keys.
    pub(crate) fn collect(&self, now_ms: u64) {
        let mut inner = self.lock();
        for (ns, map) in inner.maps.iter_mut() {
            let n = map.collect(
                now_ms.saturating_sub(DELETED_RETENTION_MS),
                now_ms.saturating_sub(EXPIRED_RETENTION_MS),
                stamp_ms,
            );
            if n > 0 {
                tracing::debug!(namespace = %ns, forgotten = n, "kv.crdt: old deletes and expired keys collected");
            }
        }
    }

    /// Writes a snapshot of every durable namespace changed since its last
    /// one. Failures are logged; the namespace stays marked for the next try.
    pub(crate) fn persist(&self) {
        let Some(dir) = self.dir.lock().unwrap_or_else(|e| e.into_inner()).clone() else { return };
        let declared = self.declared.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let pending: Vec<(String, Vec<(String, Entry)>)> = {
            let mut inner = self.lock();
            let names: Vec<String> = inner.dirty.drain().collect();
            names
                .into_iter()
                .filter(|ns| declared.get(ns).copied().unwrap_or(false))
                .filter_map(|ns| inner.maps.get(&ns).map(|m| (ns, m.all())))
                .collect()
        };
        for (ns, entries) in pending {
            if let Err(e) = disk::save(&dir, &ns, entries) {
                tracing::error!(error = %e, "kv.crdt: snapshot not written; retrying later");
                self.lock().dirty.insert(ns);
            }
        }
    }

    /// Entries held per namespace (for metrics and tests).
    pub(crate) fn sizes(&self) -> Vec<(String, usize)> {
        let inner = self.lock();
        let mut v: Vec<(String, usize)> = inner.maps.iter().map(|(k, m)| (k.clone(), m.len())).collect();
        v.sort();
        v
    }
}

/// A local write (`None`: a delete) stamped by this node's clock and merged
/// into its copy; the entry to send to peers.
fn stamp_write(
    map: &mut LwwMap,
    clock: &mut Clock,
    node: &str,
    key: &str,
    value: Option<Value>,
    expires_ms: Option<u64>,
    now_ms: u64,
) -> Entry {
    let e = Entry { value, stamp: clock.tick(now_ms), node: node.to_owned(), expires_ms };
    map.merge(key, e.clone());
    e
}

fn delta(ns: &str, key: String, e: Entry) -> Outgoing {
    Some(KvWire::Delta { ns: ns.to_owned(), entries: vec![(key, e)] })
}

/// `{key, value, version}`; the version is the write's stamp.
fn entry_value(key: &str, e: &Entry) -> Value {
    Value::Map(vec![
        (Value::str("key"), Value::str(key)),
        (Value::str("value"), e.value.clone().unwrap_or(Value::Nil)),
        (Value::str("version"), Value::Int(i64::try_from(e.stamp).unwrap_or(i64::MAX))),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(node: &str) -> CrdtStores {
        let s = CrdtStores::new(node);
        s.declare("sess", false, None);
        s
    }

    fn set(s: &CrdtStores, key: &str, v: i64, now: u64) -> Outgoing {
        let op = StoreOp::Set { key: key.into(), value: Value::Int(v), ttl_ms: None };
        s.execute("sess", op, now).unwrap().1
    }

    fn get(s: &CrdtStores, key: &str) -> Option<Value> {
        s.execute("sess", StoreOp::Get { key: key.into() }, 10).ok().map(|(v, _)| v)
    }

    /// Delivers `msgs` to `to` and the answers back, until quiet.
    fn exchange(from: &CrdtStores, to: &CrdtStores, msgs: Vec<KvWire>) {
        let mut pending = vec![(msgs, true)];
        while let Some((batch, to_to)) = pending.pop() {
            let (dst, _) = if to_to { (to, from) } else { (from, to) };
            for m in batch {
                let answers = dst.on_wire(m);
                if !answers.is_empty() {
                    pending.push((answers, !to_to));
                }
            }
        }
    }

    #[test]
    fn deltas_replicate_writes_and_deletes() {
        let (a, b) = (store("a"), store("b"));
        let out = set(&a, "k", 1, 5);
        exchange(&a, &b, out.into_iter().collect());
        assert_eq!(get(&b, "k"), Some(Value::Int(1)));
        let (v, out) = a.execute("sess", StoreOp::Delete { key: "k".into() }, 6).unwrap();
        assert_eq!(v, Value::Bool(true));
        exchange(&a, &b, out.into_iter().collect());
        assert_eq!(get(&b, "k"), None);
        let (v, out) = a.execute("sess", StoreOp::Delete { key: "never".into() }, 6).unwrap();
        assert_eq!((v, out), (Value::Bool(false), None));
    }

    #[test]
    fn a_digest_exchange_levels_diverged_copies() {
        let (a, b) = (store("a"), store("b"));
        set(&a, "x", 1, 5);
        set(&b, "y", 2, 5);
        set(&a, "z", 3, 5);
        set(&b, "z", 4, 9);
        exchange(&a, &b, vec![a.digest()]);
        for s in [&a, &b] {
            assert_eq!(
                (get(s, "x"), get(s, "y"), get(s, "z")),
                (Some(Value::Int(1)), Some(Value::Int(2)), Some(Value::Int(4)))
            );
        }
        assert_eq!(a.digest(), b.digest());
        assert!(b.on_wire(a.digest()).is_empty(), "level copies stay quiet");
    }

    #[test]
    fn conditions_are_refused_and_undeclared_namespaces_ignored() {
        let a = store("a");
        let op =
            StoreOp::Put { key: "k".into(), value: Value::Nil, ttl_ms: None, cond: wippy_lua_stdlib::PutCond::Absent };
        assert_eq!(a.execute("sess", op, 1).unwrap_err().kind, "INVALID");
        let foreign = KvWire::Delta { ns: "other".into(), entries: vec![] };
        assert!(a.on_wire(foreign).is_empty());
        assert_eq!(a.sizes(), [("sess".to_string(), 0)]);
    }

    #[test]
    fn ttl_keys_read_as_absent_after_expiry() {
        let a = store("a");
        a.execute("sess", StoreOp::Set { key: "t".into(), value: Value::Int(1), ttl_ms: Some(10) }, 100).unwrap();
        let has = |now| a.execute("sess", StoreOp::Has { key: "t".into() }, now).unwrap().0;
        assert_eq!(has(105), Value::Bool(true));
        assert_eq!(has(111), Value::Bool(false));
    }

    #[test]
    fn a_durable_namespace_comes_back_from_disk() {
        let dir = std::env::temp_dir().join(format!("wippy-crdt-durable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = CrdtStores::new("a");
        a.declare("sess", true, Some(&dir));
        set(&a, "k", 7, 1_000);
        a.persist();
        let again = CrdtStores::new("a");
        again.declare("sess", true, Some(&dir));
        assert_eq!(get(&again, "k"), Some(Value::Int(7)));
        set(&again, "k", 8, 1);
        assert_eq!(get(&again, "k"), Some(Value::Int(8)), "the clock starts past the loaded stamps");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
