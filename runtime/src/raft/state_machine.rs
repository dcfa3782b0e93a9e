//! The replicated KV state, applied from the log, in `state.redb`.

use std::io;
use std::io::Cursor;
use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::type_config::alias::{EntryOf, LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StoredMembership};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::kv::{Effect, Record, decide};
use super::name_index::{self, IndexChange, NameIndex};
use super::snapshot::{Bytes, SnapshotBody, StoredSnapshot};
use super::store::{STATE_FILE, StoreError, blocking, db_err, decode, encode};
use super::types::{Command, Response, TypeConfig};

/// The replicated keys and their encoded [`Record`]s.
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// Keys with a lifetime, by the time it ends: what the leader's expiry
/// sweep reads. Derived from [`KV`] (rebuilt when a snapshot installs).
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");
/// Records that belong to a node, by (owner, key), with their version:
/// what the leader removes when the owner leaves. Derived from [`KV`].
const OWNED: TableDefinition<(&str, &str), u64> = TableDefinition::new("owned");
/// [`LAST_APPLIED`], [`LAST_MEMBERSHIP`], [`SNAPSHOT_META`] and
/// [`SNAPSHOT_DATA`].
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const LAST_APPLIED: &str = "last_applied";
const LAST_MEMBERSHIP: &str = "last_membership";
/// The meta of the last built or installed snapshot. Kept apart from its
/// data so checking which snapshot is newer does not decode the whole state.
const SNAPSHOT_META: &str = "snapshot_meta";
/// The encoded [`SnapshotBody`] of that snapshot, kept so a restarted node
/// can send it to a lagging follower without rebuilding it.
const SNAPSHOT_DATA: &str = "snapshot_data";

type LogId = LogIdOf<TypeConfig>;
type Membership = StoredMembershipOf<TypeConfig>;
type SnapshotMeta = SnapshotMetaOf<TypeConfig>;
type Snapshot = SnapshotOf<TypeConfig, Cursor<Vec<u8>>>;

/// The state machine on redb. Every applied batch writes its data,
/// `last_applied` and `last_membership` in one transaction, so after a
/// crash the state and the point it claims to be at always agree. Clones
/// share the database; the snapshot builder is such a clone.
#[derive(Clone)]
pub(crate) struct StateMachine {
    db: Arc<Database>,
    /// The `name/` records in memory, for sends by name.
    pub(crate) names: NameIndex,
}

impl StateMachine {
    /// Wraps an opened `state.redb`, creating its tables.
    pub(crate) fn open(db: Arc<Database>) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(db_err(STATE_FILE, "begin write"))?;
        txn.open_table(KV).map_err(db_err(STATE_FILE, "create table kv"))?;
        txn.open_table(EXPIRY).map_err(db_err(STATE_FILE, "create table expiry"))?;
        txn.open_table(OWNED).map_err(db_err(STATE_FILE, "create table owned"))?;
        txn.open_table(META).map_err(db_err(STATE_FILE, "create table meta"))?;
        txn.commit().map_err(db_err(STATE_FILE, "commit table creation"))?;
        let sm = Self { db, names: NameIndex::default() };
        let (applied, _) = sm.read_applied()?;
        sm.names.reset(applied.map_or(0, |l| l.index), sm.name_records()?);
        Ok(sm)
    }

    /// Every `name/` record, for the in-memory index.
    fn name_records(&self) -> Result<Vec<IndexChange>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err(STATE_FILE, "begin read"))?;
        let kv = txn.open_table(KV).map_err(db_err(STATE_FILE, "open table kv"))?;
        let mut out = Vec::new();
        for row in kv.range(name_index::PREFIX..).map_err(db_err(STATE_FILE, "scan names"))? {
            let (k, v) = row.map_err(db_err(STATE_FILE, "scan names"))?;
            if !k.value().starts_with(name_index::PREFIX) {
                break;
            }
            let record: Record = decode(STATE_FILE, "record", v.value())?;
            out.push((k.value().to_owned(), Some((record.value.0, record.version))));
        }
        Ok(out)
    }

    /// The value of `key` on this replica, if it is live by this node's
    /// clock. Not linearizable by itself.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.entry(key, wall_ms())?.map(|r| r.value.0))
    }

    /// The record of `key` if it is live at `now_ms`.
    pub(crate) fn entry(&self, key: &str, now_ms: u64) -> Result<Option<Record>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err(STATE_FILE, "begin read"))?;
        let table = txn.open_table(KV).map_err(db_err(STATE_FILE, "open table kv"))?;
        let Some(raw) = table.get(key).map_err(db_err(STATE_FILE, "read key"))? else {
            return Ok(None);
        };
        let record: Record = decode(STATE_FILE, "record", raw.value())?;
        Ok(Some(record).filter(|r| r.live_at(now_ms)))
    }

    /// Up to `limit` live records whose keys start with `prefix` and sort
    /// after `after`, in key order, and whether more follow.
    pub(crate) fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> Result<(Vec<(String, Record)>, bool), StoreError> {
        let txn = self.db.begin_read().map_err(db_err(STATE_FILE, "begin read"))?;
        let table = txn.open_table(KV).map_err(db_err(STATE_FILE, "open table kv"))?;
        let start = match after {
            Some(a) if a >= prefix => a,
            _ => prefix,
        };
        let mut out = Vec::new();
        for row in table.range(start..).map_err(db_err(STATE_FILE, "scan kv"))? {
            let (k, v) = row.map_err(db_err(STATE_FILE, "scan kv"))?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            if after.is_some_and(|a| key <= a) {
                continue;
            }
            let record: Record = decode(STATE_FILE, "record", v.value())?;
            if !record.live_at(now_ms) {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push((key.to_string(), record));
        }
        Ok((out, false))
    }

    /// Records whose owner `orphaned` picks, as (owner, key, version), at
    /// most `limit` of them.
    pub(crate) fn orphans(
        &self,
        orphaned: impl Fn(&str) -> bool,
        limit: usize,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err(STATE_FILE, "begin read"))?;
        let table = txn.open_table(OWNED).map_err(db_err(STATE_FILE, "open table owned"))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err(STATE_FILE, "scan owned"))? {
            let (k, v) = row.map_err(db_err(STATE_FILE, "scan owned"))?;
            let (owner, key) = k.value();
            if orphaned(owner) {
                out.push((owner.to_string(), key.to_string(), v.value()));
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// When the earliest lifetime ends, if any key has one.
    pub(crate) fn next_expiry(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err(STATE_FILE, "begin read"))?;
        let table = txn.open_table(EXPIRY).map_err(db_err(STATE_FILE, "open table expiry"))?;
        let first = table.first().map_err(db_err(STATE_FILE, "read expiry"))?;
        Ok(first.map(|(k, _)| k.value().0))
    }

    /// The last applied log id and membership.
    fn read_applied(&self) -> Result<(Option<LogId>, Membership), StoreError> {
        let txn = self.db.begin_read().map_err(db_err(STATE_FILE, "begin read"))?;
        read_applied_in(&txn)
    }

    /// Applies `entries` in one durable transaction and returns one
    /// response per entry.
    fn apply_batch(&self, entries: Vec<EntryOf<TypeConfig>>) -> Result<Vec<Response>, StoreError> {
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        let mut membership = None;
        let mut responses = Vec::with_capacity(entries.len());
        let mut named: Vec<IndexChange> = Vec::new();
        let mut txn = self.db.begin_write().map_err(db_err(STATE_FILE, "begin write"))?;
        // The log is the durable record; a crash that loses applied state
        // also loses `last_applied` with it (same transaction), and openraft
        // applies those entries again from the log. Snapshots and installs
        // are durable commits, which persist everything applied before them.
        txn.set_durability(Durability::None).map_err(db_err(STATE_FILE, "set durability"))?;
        {
            let mut kv = txn.open_table(KV).map_err(db_err(STATE_FILE, "open table kv"))?;
            let mut expiry = txn.open_table(EXPIRY).map_err(db_err(STATE_FILE, "open table expiry"))?;
            let mut owned = txn.open_table(OWNED).map_err(db_err(STATE_FILE, "open table owned"))?;
            for entry in entries {
                let response = match entry.payload {
                    EntryPayload::Blank => Response::default(),
                    EntryPayload::Membership(m) => {
                        membership = Some(StoredMembership::new(Some(entry.log_id), m));
                        Response::default()
                    }
                    EntryPayload::Normal(Command::Expire { now_ms }) => {
                        expire(&mut kv, &mut expiry, &mut owned, now_ms)?;
                        Response::default()
                    }
                    EntryPayload::Normal(cmd) => {
                        let Some(key) = cmd.key().map(str::to_owned) else {
                            responses.push(Response::default());
                            continue;
                        };
                        let current = match kv.get(key.as_str()).map_err(db_err(STATE_FILE, "read key"))? {
                            Some(raw) => Some(decode::<Record>(STATE_FILE, "record", raw.value())?),
                            None => None,
                        };
                        let (effect, response) = decide(current.as_ref(), entry.log_id.index, &cmd);
                        if effect != Effect::Keep
                            && let Some(old) = current.as_ref()
                        {
                            unindex(&mut expiry, &mut owned, &key, old)?;
                        }
                        match effect {
                            Effect::Keep => {}
                            Effect::Write(record) => {
                                let raw = encode(STATE_FILE, "record", &record)?;
                                kv.insert(key.as_str(), raw.as_slice()).map_err(db_err(STATE_FILE, "put"))?;
                                index(&mut expiry, &mut owned, &key, &record)?;
                                if key.starts_with(name_index::PREFIX) {
                                    named.push((key.clone(), Some((record.value.0.clone(), record.version))));
                                }
                            }
                            Effect::Remove => {
                                kv.remove(key.as_str()).map_err(db_err(STATE_FILE, "delete"))?;
                                if key.starts_with(name_index::PREFIX) {
                                    named.push((key.clone(), None));
                                }
                            }
                        }
                        response
                    }
                };
                responses.push(response);
            }
        }
        put_meta(&txn, LAST_APPLIED, &Some(last))?;
        if let Some(m) = membership {
            put_meta(&txn, LAST_MEMBERSHIP, &m)?;
        }
        txn.commit().map_err(db_err(STATE_FILE, "commit apply"))?;
        self.names.apply(last.index, named);
        Ok(responses)
    }

    /// Serialises the state as of one read transaction (redb's MVCC keeps
    /// it consistent while applies go on) and records it as current.
    fn build(&self) -> Result<StoredSnapshot, StoreError> {
        let body = {
            let txn = self.db.begin_read().map_err(db_err(STATE_FILE, "begin read"))?;
            let (last_applied, last_membership) = read_applied_in(&txn)?;
            let table = txn.open_table(KV).map_err(db_err(STATE_FILE, "open table kv"))?;
            let mut kv = Vec::new();
            for row in table.iter().map_err(db_err(STATE_FILE, "scan kv"))? {
                let (k, v) = row.map_err(db_err(STATE_FILE, "scan kv"))?;
                kv.push((k.value().to_string(), Bytes(v.value().to_vec())));
            }
            SnapshotBody { last_applied, last_membership, kv }
        };
        let meta = SnapshotMeta { last_log_id: body.last_applied, last_membership: body.last_membership.clone() };
        let stored = StoredSnapshot { meta, data: Bytes(encode(STATE_FILE, "snapshot", &body)?) };
        let txn = self.db.begin_write().map_err(db_err(STATE_FILE, "begin write"))?;
        // The build runs beside the apply worker: a snapshot installed
        // meanwhile is newer and must stay the current one.
        let newer_kept = match get_meta::<SnapshotMeta>(&txn, SNAPSHOT_META)? {
            Some(kept) => kept.last_log_id > stored.meta.last_log_id,
            None => false,
        };
        if !newer_kept {
            put_snapshot(&txn, &stored)?;
            txn.commit().map_err(db_err(STATE_FILE, "commit snapshot"))?;
        }
        Ok(stored)
    }

    /// Replaces the whole state with a snapshot's, in one transaction: a
    /// crash leaves either the old state or the new one.
    fn install(&self, meta: SnapshotMeta, data: Vec<u8>) -> Result<(), StoreError> {
        let body: SnapshotBody = decode(STATE_FILE, "received snapshot", &data)?;
        let txn = self.db.begin_write().map_err(db_err(STATE_FILE, "begin write"))?;
        txn.delete_table(KV).map_err(db_err(STATE_FILE, "drop kv"))?;
        txn.delete_table(EXPIRY).map_err(db_err(STATE_FILE, "drop expiry"))?;
        txn.delete_table(OWNED).map_err(db_err(STATE_FILE, "drop owned"))?;
        {
            let mut kv = txn.open_table(KV).map_err(db_err(STATE_FILE, "open table kv"))?;
            let mut expiry = txn.open_table(EXPIRY).map_err(db_err(STATE_FILE, "open table expiry"))?;
            let mut owned = txn.open_table(OWNED).map_err(db_err(STATE_FILE, "open table owned"))?;
            for (k, v) in &body.kv {
                kv.insert(k.as_str(), v.0.as_slice()).map_err(db_err(STATE_FILE, "install key"))?;
                let record: Record = decode(STATE_FILE, "record", &v.0)?;
                index(&mut expiry, &mut owned, k, &record)?;
            }
        }
        // The meta openraft hands over is authoritative; the copy inside
        // the body only documents the file.
        put_meta(&txn, LAST_APPLIED, &meta.last_log_id)?;
        put_meta(&txn, LAST_MEMBERSHIP, &meta.last_membership)?;
        let (covers, bytes) = (meta.last_log_id, data.len());
        put_snapshot(&txn, &StoredSnapshot { meta, data: Bytes(data) })?;
        txn.commit().map_err(db_err(STATE_FILE, "commit snapshot install"))?;
        self.names.reset(covers.map_or(0, |l| l.index), self.name_records()?);
        tracing::info!(covers = ?covers, bytes, keys = body.kv.len(), "raft: installed a snapshot from the leader");
        Ok(())
    }

    /// The current snapshot, if one was built or installed.
    fn current(&self) -> Result<Option<StoredSnapshot>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err(STATE_FILE, "begin read"))?;
        let meta = txn.open_table(META).map_err(db_err(STATE_FILE, "open table meta"))?;
        let Some(m) = meta.get(SNAPSHOT_META).map_err(db_err(STATE_FILE, "read snapshot meta"))? else {
            return Ok(None);
        };
        let snap_meta = decode(STATE_FILE, SNAPSHOT_META, m.value())?;
        let data = meta.get(SNAPSHOT_DATA).map_err(db_err(STATE_FILE, "read snapshot data"))?;
        let data = data.map(|d| d.value().to_vec()).unwrap_or_default();
        Ok(Some(StoredSnapshot { meta: snap_meta, data: Bytes(data) }))
    }
}

/// Adds `record` of `key` to the derived indexes.
fn index(
    expiry: &mut redb::Table<(u64, &str), ()>,
    owned: &mut redb::Table<(&str, &str), u64>,
    key: &str,
    record: &Record,
) -> Result<(), StoreError> {
    if let Some(t) = record.expires_ms {
        expiry.insert((t, key), ()).map_err(db_err(STATE_FILE, "index expiry"))?;
    }
    if let Some(o) = &record.owner {
        owned.insert((o.as_str(), key), record.version).map_err(db_err(STATE_FILE, "index owner"))?;
    }
    Ok(())
}

/// Takes `record` of `key` out of the derived indexes.
fn unindex(
    expiry: &mut redb::Table<(u64, &str), ()>,
    owned: &mut redb::Table<(&str, &str), u64>,
    key: &str,
    record: &Record,
) -> Result<(), StoreError> {
    if let Some(t) = record.expires_ms {
        expiry.remove((t, key)).map_err(db_err(STATE_FILE, "unindex expiry"))?;
    }
    if let Some(o) = &record.owner {
        owned.remove((o.as_str(), key)).map_err(db_err(STATE_FILE, "unindex owner"))?;
    }
    Ok(())
}

/// Removes every key whose lifetime ended by `now_ms`.
fn expire(
    kv: &mut redb::Table<&str, &[u8]>,
    expiry: &mut redb::Table<(u64, &str), ()>,
    owned: &mut redb::Table<(&str, &str), u64>,
    now_ms: u64,
) -> Result<(), StoreError> {
    let due: Vec<(u64, String)> = expiry
        .range(..(now_ms.saturating_add(1), ""))
        .map_err(db_err(STATE_FILE, "scan expiry"))?
        .map(|row| row.map(|(k, _)| (k.value().0, k.value().1.to_string())))
        .collect::<Result<_, _>>()
        .map_err(db_err(STATE_FILE, "scan expiry"))?;
    for (t, key) in due {
        expiry.remove((t, key.as_str())).map_err(db_err(STATE_FILE, "unindex expiry"))?;
        let old = kv.remove(key.as_str()).map_err(db_err(STATE_FILE, "expire key"))?;
        let owner = match old {
            Some(raw) => decode::<Record>(STATE_FILE, "record", raw.value())?.owner,
            None => None,
        };
        if let Some(o) = owner {
            owned.remove((o.as_str(), key.as_str())).map_err(db_err(STATE_FILE, "unindex owner"))?;
        }
    }
    Ok(())
}

/// Milliseconds since the Unix epoch by this node's clock.
pub(crate) fn wall_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// The applied state as one read transaction sees it.
fn read_applied_in(txn: &redb::ReadTransaction) -> Result<(Option<LogId>, Membership), StoreError> {
    let meta = txn.open_table(META).map_err(db_err(STATE_FILE, "open table meta"))?;
    let applied = match meta.get(LAST_APPLIED).map_err(db_err(STATE_FILE, "read last applied"))? {
        Some(v) => decode(STATE_FILE, LAST_APPLIED, v.value())?,
        None => None,
    };
    let membership = match meta.get(LAST_MEMBERSHIP).map_err(db_err(STATE_FILE, "read last membership"))? {
        Some(v) => decode(STATE_FILE, LAST_MEMBERSHIP, v.value())?,
        None => StoredMembership::default(),
    };
    Ok((applied, membership))
}

/// Writes one meta record inside `txn`.
fn put_meta<T: serde::Serialize>(txn: &WriteTransaction, key: &'static str, value: &T) -> Result<(), StoreError> {
    let bytes = encode(STATE_FILE, key, value)?;
    let mut meta = txn.open_table(META).map_err(db_err(STATE_FILE, "open table meta"))?;
    meta.insert(key, bytes.as_slice()).map_err(db_err(STATE_FILE, "write meta"))?;
    Ok(())
}

/// Reads one meta record inside a write transaction.
fn get_meta<T: serde::de::DeserializeOwned>(
    txn: &WriteTransaction,
    key: &'static str,
) -> Result<Option<T>, StoreError> {
    let meta = txn.open_table(META).map_err(db_err(STATE_FILE, "open table meta"))?;
    let value = meta.get(key).map_err(db_err(STATE_FILE, "read meta"))?;
    value.map(|v| decode(STATE_FILE, key, v.value())).transpose()
}

/// Records `snap` as the current snapshot inside `txn`. The data is stored
/// as is: it already is the encoded body.
fn put_snapshot(txn: &WriteTransaction, snap: &StoredSnapshot) -> Result<(), StoreError> {
    put_meta(txn, SNAPSHOT_META, &snap.meta)?;
    let mut meta = txn.open_table(META).map_err(db_err(STATE_FILE, "open table meta"))?;
    meta.insert(SNAPSHOT_DATA, snap.data.0.as_slice()).map_err(db_err(STATE_FILE, "write snapshot data"))?;
    Ok(())
}

/// Hands a kept snapshot to openraft.
fn to_snapshot(stored: StoredSnapshot) -> Snapshot {
    Snapshot { meta: stored.meta, snapshot: Cursor::new(stored.data.0) }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let this = self.clone();
        Ok(to_snapshot(blocking(STATE_FILE, move || this.build()).await?))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), io::Error> {
        let this = self.clone();
        Ok(blocking(STATE_FILE, move || this.read_applied()).await?)
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut batch = Vec::new();
        let mut responders = Vec::new();
        while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut entries).poll_next(cx)).await {
            let (entry, responder) = item?;
            batch.push(entry);
            responders.push(responder);
        }
        // Inline: a non-durable commit costs less than the thread hop.
        let responses = self.apply_batch(batch)?;
        // Answer only after the commit, so a client never sees a result
        // the replica could lose.
        for (responder, response) in responders.into_iter().zip(responses) {
            if let Some(r) = responder {
                r.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Cursor<Vec<u8>>) -> Result<(), io::Error> {
        let this = self.clone();
        let meta = meta.clone();
        Ok(blocking(STATE_FILE, move || this.install(meta, snapshot.into_inner())).await?)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let this = self.clone();
        Ok(blocking(STATE_FILE, move || this.current()).await?.map(to_snapshot))
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::{blank_ent, log_id};

    use super::*;
    use crate::raft::store::open;
    use crate::raft::store_test::TempDir;
    use crate::raft::types::Cond;

    fn normal(index: u64, cmd: Command) -> EntryOf<TypeConfig> {
        EntryOf::<TypeConfig> { log_id: log_id::<TypeConfig>(1, 1, index), payload: EntryPayload::Normal(cmd) }
    }

    #[test]
    fn commands_answer_the_previous_value() {
        let dir = TempDir::new();
        let (_, sm) = open(dir.path()).unwrap();
        let put = |i, v: &[u8]| normal(i, set("k", v, None, 0));
        let responses = sm
            .apply_batch(vec![
                blank_ent::<TypeConfig>(1, 1, 1),
                put(2, b"a"),
                put(3, b"b"),
                normal(4, Command::Delete { key: "k".into(), cond: Cond::Always, now_ms: 0 }),
                normal(5, Command::Delete { key: "k".into(), cond: Cond::Always, now_ms: 0 }),
            ])
            .unwrap();
        let previous: Vec<_> = responses.iter().map(|r| r.previous.clone()).collect();
        assert_eq!(previous, vec![None, None, Some(b"a".to_vec()), Some(b"b".to_vec()), None]);
        let versions: Vec<_> = responses.iter().map(|r| r.version).collect();
        assert_eq!(versions, vec![0, 2, 3, 3, 0]);
        assert_eq!(sm.read_applied().unwrap().0, Some(log_id::<TypeConfig>(1, 1, 5)));
        assert_eq!(sm.get("k").unwrap(), None);
    }

    fn set(key: &str, v: &[u8], ttl_ms: Option<u64>, now_ms: u64) -> Command {
        Command::Put { key: key.into(), value: v.to_vec(), cond: Cond::Always, ttl_ms, now_ms, owner: None }
    }

    #[test]
    fn expiry_removes_due_keys_at_the_leaders_time_only() {
        let dir = TempDir::new();
        let (_, sm) = open(dir.path()).unwrap();
        sm.apply_batch(vec![
            normal(1, set("short", b"1", Some(100), 1_000)),
            normal(2, set("long", b"2", Some(10_000), 1_000)),
            normal(3, set("kept", b"3", None, 1_000)),
            // Overwriting drops the old lifetime from the index.
            normal(4, set("renewed", b"4", Some(50), 1_000)),
            normal(5, set("renewed", b"5", None, 1_010)),
        ])
        .unwrap();
        assert_eq!(sm.next_expiry().unwrap(), Some(1_100));
        assert!(sm.entry("short", 1_099).unwrap().is_some());
        assert!(sm.entry("short", 1_100).unwrap().is_none(), "reads hide a due key before the sweep");
        sm.apply_batch(vec![normal(6, Command::Expire { now_ms: 1_500 })]).unwrap();
        assert_eq!(sm.next_expiry().unwrap(), Some(11_000));
        let (rows, more) = sm.list("", None, 10, 1_500).unwrap();
        let keys: Vec<_> = rows.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["kept", "long", "renewed"]);
        assert!(!more);
    }

    #[test]
    fn list_pages_by_prefix_in_key_order() {
        let dir = TempDir::new();
        let (_, sm) = open(dir.path()).unwrap();
        let keys = ["a/1", "a/2", "a/3", "ab", "b/1"];
        sm.apply_batch(keys.iter().zip(1..).map(|(k, i)| normal(i, set(k, b"v", None, 0))).collect()).unwrap();
        let (rows, more) = sm.list("a/", None, 2, 0).unwrap();
        assert_eq!(rows.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a/1", "a/2"]);
        assert!(more);
        let (rows, more) = sm.list("a/", Some("a/2"), 2, 0).unwrap();
        assert_eq!(rows.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a/3"]);
        assert!(!more);
        assert_eq!(rows[0].1.version, 3);
    }

    #[test]
    fn an_installed_snapshot_keeps_lifetimes() {
        let dir = TempDir::new();
        let (_, leader) = open(dir.path()).unwrap();
        leader.apply_batch(vec![normal(1, set("t", b"1", Some(100), 1_000))]).unwrap();
        let snap = leader.build().unwrap();
        let other = TempDir::new();
        let (_, follower) = open(other.path()).unwrap();
        follower.install(snap.meta, snap.data.0).unwrap();
        assert_eq!(follower.next_expiry().unwrap(), Some(1_100));
        follower.apply_batch(vec![normal(2, Command::Expire { now_ms: 2_000 })]).unwrap();
        assert!(follower.entry("t", 0).unwrap().is_none());
    }

    #[test]
    fn a_build_does_not_replace_a_newer_snapshot() {
        let dir = TempDir::new();
        let (_, sm) = open(dir.path()).unwrap();
        sm.apply_batch(vec![blank_ent::<TypeConfig>(1, 1, 3)]).unwrap();
        // As if a snapshot at 10 was installed while this build read at 3.
        let newer = SnapshotMeta { last_log_id: Some(log_id::<TypeConfig>(2, 1, 10)), ..Default::default() };
        let txn = sm.db.begin_write().unwrap();
        put_snapshot(&txn, &StoredSnapshot { meta: newer.clone(), data: Bytes(vec![1]) }).unwrap();
        txn.commit().unwrap();

        let built = sm.build().unwrap();
        assert_eq!(built.meta.last_log_id, Some(log_id::<TypeConfig>(1, 1, 3)));
        assert_eq!(sm.current().unwrap().unwrap().meta, newer);
    }
}
