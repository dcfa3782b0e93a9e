//! The durable Raft log, vote and committed id, in `log.redb`.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::mpsc;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::{OptionalSend, RaftLogReader};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::store::{LOG_FILE, StoreError, blocking, db_err, decode, encode};
use super::types::TypeConfig;

/// Log index → the entry, rmp-encoded with field names.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Small named records: [`VOTE`], [`COMMITTED`], [`LAST_PURGED`].
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
/// The id of the last purged entry. Kept because once the log is purged
/// empty it is the only record of the last log id.
const LAST_PURGED: &str = "last_purged";

type Entry = EntryOf<TypeConfig>;
type LogId = LogIdOf<TypeConfig>;
type Vote = VoteOf<TypeConfig>;

/// The Raft log on redb. Clones share the database, so the log reader
/// openraft asks for is just another handle.
///
/// Appends are group-committed: `append` writes the entries in a
/// non-durable transaction (visible to readers at once, as openraft
/// requires) and hands the flush callback to the flusher thread, which
/// makes everything written so far durable with one fsync and then
/// confirms every append it covered. While one fsync runs, the next appends
/// queue up behind it and share the following one, so the log's throughput
/// grows with load instead of being one fsync per batch. Votes, truncations
/// and purges are durable when they return.
#[derive(Clone)]
pub(crate) struct LogStore {
    db: Arc<Database>,
    flusher: Arc<Flusher>,
}

/// The flusher thread and the only way to reach it. Dropped with the last
/// handle of the log: it then closes the queue and waits for the thread,
/// so once the log is gone its file is closed too and can be opened again.
struct Flusher {
    queue: std::sync::Mutex<Option<mpsc::Sender<IOFlushed<TypeConfig>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    /// Queues `callback` for the next durable commit; gives it back when
    /// the thread is gone.
    fn send(&self, callback: IOFlushed<TypeConfig>) -> Result<(), IOFlushed<TypeConfig>> {
        match self.queue.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(q) => q.send(callback).map_err(|mpsc::SendError(cb)| cb),
            None => Err(callback),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Makes appended entries durable and confirms them, until every handle of
/// the log is gone. It holds the database only while flushing.
fn flush_loop(db: std::sync::Weak<Database>, pending: mpsc::Receiver<IOFlushed<TypeConfig>>) {
    while let Ok(first) = pending.recv() {
        let mut batch = vec![first];
        batch.extend(pending.try_iter());
        let flushed = match db.upgrade() {
            Some(db) => db
                .begin_write()
                .map_err(db_err(LOG_FILE, "begin flush"))
                .and_then(|txn| txn.commit().map_err(db_err(LOG_FILE, "flush appends"))),
            None => Err(StoreError::Task { file: LOG_FILE, reason: "the log was closed".into() }),
        };
        match flushed {
            Ok(()) => batch.into_iter().for_each(|cb| cb.io_completed(Ok(()))),
            Err(e) => {
                let msg = e.to_string();
                batch.into_iter().for_each(|cb| cb.io_completed(Err(io::Error::other(msg.clone()))));
            }
        }
    }
}

impl LogStore {
    /// Wraps an opened `log.redb`, creating its tables so later read
    /// transactions never meet a missing table.
    pub(crate) fn open(db: Arc<Database>) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(db_err(LOG_FILE, "begin write"))?;
        txn.open_table(LOG).map_err(db_err(LOG_FILE, "create table log"))?;
        txn.open_table(META).map_err(db_err(LOG_FILE, "create table meta"))?;
        txn.commit().map_err(db_err(LOG_FILE, "commit table creation"))?;
        let (queue, pending) = mpsc::channel();
        let flush_db = Arc::downgrade(&db);
        let thread = std::thread::Builder::new()
            .name("wippy-raft-log".into())
            .spawn(move || flush_loop(flush_db, pending))
            .map_err(|e| StoreError::Task { file: LOG_FILE, reason: e.to_string() })?;
        let flusher = Arc::new(Flusher { queue: std::sync::Mutex::new(Some(queue)), thread: Some(thread) });
        Ok(Self { db, flusher })
    }

    /// Reads one meta record. Runs inline, unlike the writes: one small
    /// record from redb's page cache costs less than a thread hop.
    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &'static str) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err(LOG_FILE, "begin read"))?;
        let table = txn.open_table(META).map_err(db_err(LOG_FILE, "open table meta"))?;
        match table.get(key).map_err(db_err(LOG_FILE, "read meta"))? {
            Some(v) => Ok(Some(decode(LOG_FILE, key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Writes one meta record in its own transaction, durable when it
    /// returns if `durable`, else with the next durable commit.
    async fn write_meta(&self, key: &'static str, bytes: Vec<u8>, durable: bool) -> Result<(), StoreError> {
        let db = self.db.clone();
        let write = move || {
            let mut txn = db.begin_write().map_err(db_err(LOG_FILE, "begin write"))?;
            if !durable {
                txn.set_durability(Durability::None).map_err(db_err(LOG_FILE, "set durability"))?;
            }
            {
                let mut meta = txn.open_table(META).map_err(db_err(LOG_FILE, "open table meta"))?;
                meta.insert(key, bytes.as_slice()).map_err(db_err(LOG_FILE, "write meta"))?;
            }
            txn.commit().map_err(db_err(LOG_FILE, "commit meta"))
        };
        if durable { blocking(LOG_FILE, write).await } else { write() }
    }

    /// The entries with indexes in `range`, in order.
    fn read_entries(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<Entry>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err(LOG_FILE, "begin read"))?;
        let table = txn.open_table(LOG).map_err(db_err(LOG_FILE, "open table log"))?;
        let mut out = Vec::new();
        for row in table.range::<u64>(range).map_err(db_err(LOG_FILE, "read log range"))? {
            let (_, v) = row.map_err(db_err(LOG_FILE, "read log entry"))?;
            out.push(decode(LOG_FILE, "log entry", v.value())?);
        }
        Ok(out)
    }

    /// The last purged id and the id of the last entry still in the log.
    fn log_state(&self) -> Result<LogState<TypeConfig>, StoreError> {
        let last_purged: Option<LogId> = self.read_meta(LAST_PURGED)?;
        let txn = self.db.begin_read().map_err(db_err(LOG_FILE, "begin read"))?;
        let table = txn.open_table(LOG).map_err(db_err(LOG_FILE, "open table log"))?;
        let last = match table.last().map_err(db_err(LOG_FILE, "read last entry"))? {
            Some((_, v)) => Some(decode::<Entry>(LOG_FILE, "log entry", v.value())?.log_id()),
            None => None,
        };
        Ok(LogState { last_log_id: last.or(last_purged), last_purged_log_id: last_purged })
    }

    /// Writes `entries` in one non-durable transaction: readable when it
    /// returns, on disk once the flusher's next commit is.
    fn write_entries(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(db_err(LOG_FILE, "begin write"))?;
        txn.set_durability(Durability::None).map_err(db_err(LOG_FILE, "set durability"))?;
        {
            let mut log = txn.open_table(LOG).map_err(db_err(LOG_FILE, "open table log"))?;
            for (index, bytes) in &entries {
                log.insert(*index, bytes.as_slice()).map_err(db_err(LOG_FILE, "append entry"))?;
            }
        }
        txn.commit().map_err(db_err(LOG_FILE, "commit append"))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        // Inline: replication reads what was just appended, from redb's
        // page cache, and a thread hop would cost more than the read.
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        Ok(self.read_entries(bounds)?)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.read_meta(VOTE)?)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let this = self.clone();
        Ok(blocking(LOG_FILE, move || this.log_state()).await?)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        Ok(self.write_meta(VOTE, encode(LOG_FILE, VOTE, vote)?, true).await?)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // A hint for recovery only (openraft re-applies up to it at start):
        // an older value after a crash is harmless, so it costs no fsync.
        // It is harmless because a restarted leader never resumes its term
        // (`enable_leader_restore: false` in service.rs).
        Ok(self.write_meta(COMMITTED, encode(LOG_FILE, COMMITTED, &committed)?, false).await?)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.read_meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded: Result<Vec<_>, StoreError> =
            entries.into_iter().map(|e| Ok((e.index(), encode(LOG_FILE, "log entry", &e)?))).collect();
        let result = encoded.and_then(|encoded| self.write_entries(encoded));
        // openraft treats the entries as persisted once the callback fires,
        // so it fires only after the flusher's durable commit.
        match result {
            Ok(()) => match self.flusher.send(callback) {
                Ok(()) => Ok(()),
                Err(callback) => {
                    let e = io::Error::other("raft log: the flusher thread is gone");
                    callback.io_completed(Err(io::Error::other(e.to_string())));
                    Err(e)
                }
            },
            Err(e) => {
                let msg = e.to_string();
                callback.io_completed(Err(io::Error::other(msg)));
                Err(e.into())
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = match &last_log_id {
            Some(id) => Bound::Excluded(id.index),
            None => Bound::Unbounded,
        };
        let db = self.db.clone();
        Ok(blocking(LOG_FILE, move || {
            let txn = db.begin_write().map_err(db_err(LOG_FILE, "begin write"))?;
            {
                let mut log = txn.open_table(LOG).map_err(db_err(LOG_FILE, "open table log"))?;
                log.retain_in::<u64, _>((from, Bound::Unbounded), |_, _| false)
                    .map_err(db_err(LOG_FILE, "truncate log"))?;
            }
            txn.commit().map_err(db_err(LOG_FILE, "commit truncate"))
        })
        .await?)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let bytes = encode(LOG_FILE, LAST_PURGED, &log_id)?;
        let db = self.db.clone();
        // The purge mark and the removal share a transaction, so a crash
        // never leaves a gap the log state does not account for.
        Ok(blocking(LOG_FILE, move || {
            let txn = db.begin_write().map_err(db_err(LOG_FILE, "begin write"))?;
            {
                let mut log = txn.open_table(LOG).map_err(db_err(LOG_FILE, "open table log"))?;
                log.retain_in::<u64, _>(..=log_id.index, |_, _| false).map_err(db_err(LOG_FILE, "purge log"))?;
                let mut meta = txn.open_table(META).map_err(db_err(LOG_FILE, "open table meta"))?;
                meta.insert(LAST_PURGED, bytes.as_slice()).map_err(db_err(LOG_FILE, "write last purged"))?;
            }
            txn.commit().map_err(db_err(LOG_FILE, "commit purge"))
        })
        .await?)
    }
}
