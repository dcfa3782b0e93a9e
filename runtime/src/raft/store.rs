//! Opening the Raft storage directory, and the errors its two files can
//! raise.
//!
//! The log and the state machine live in separate redb files because redb
//! has a single writer per file: with one file, every log append would wait
//! behind the apply of the previous batch, and the other way round.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, DatabaseError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::log_store::LogStore;
use super::state_machine::StateMachine;

/// The file holding the log, the vote and the committed log id.
pub(crate) const LOG_FILE: &str = "log.redb";
/// The file holding the applied state and the current snapshot.
pub(crate) const STATE_FILE: &str = "state.redb";

/// What went wrong in the Raft storage. Reads and writes change nothing
/// when they fail: every change is one redb transaction, which is either
/// committed whole or dropped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The directory could not be created; nothing was opened.
    #[error("cannot create the Raft data directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Another process (or another open in this one) holds the file.
    #[error("{path} is locked: another process (or store) has it open")]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The file exists but is not a redb database, or is damaged.
    #[error("{path} is not a readable redb database (corrupt or foreign file): {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What redb reported.
        source: DatabaseError,
    },
    /// Any other failure to open the file.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What redb reported.
        source: DatabaseError,
    },
    /// A redb operation on an open file failed; its transaction was dropped.
    #[error("{file}: {op} failed: {source}")]
    Db {
        /// The file name.
        file: &'static str,
        /// What was being done.
        op: &'static str,
        /// What redb reported.
        source: redb::Error,
    },
    /// A value could not be encoded; nothing was written.
    #[error("{file}: cannot encode {what}: {source}")]
    Encode {
        /// The file name.
        file: &'static str,
        /// The value.
        what: &'static str,
        /// What rmp-serde reported.
        source: rmp_serde::encode::Error,
    },
    /// A stored (or received) value could not be decoded.
    #[error("{file}: cannot decode {what}: {source}")]
    Decode {
        /// The file name.
        file: &'static str,
        /// The value.
        what: &'static str,
        /// What rmp-serde reported.
        source: rmp_serde::decode::Error,
    },
    /// A blocking storage task did not finish (it panicked or was cancelled).
    #[error("{file}: the storage task did not finish: {reason}")]
    Task {
        /// The file name.
        file: &'static str,
        /// What tokio reported.
        reason: String,
    },
}

/// openraft's storage traits speak `io::Error`; the message keeps the file
/// and the operation so a storage failure in the Raft logs says where.
impl From<StoreError> for io::Error {
    fn from(e: StoreError) -> Self {
        let kind = match &e {
            StoreError::Decode { .. } | StoreError::Corrupt { .. } => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// Opens (creating if needed) `dir` and both store files in it.
pub(crate) fn open(dir: &Path) -> Result<(LogStore, StateMachine), StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir { path: dir.to_path_buf(), source })?;
    let log = LogStore::open(open_db(&dir.join(LOG_FILE))?)?;
    let sm = StateMachine::open(open_db(&dir.join(STATE_FILE))?)?;
    Ok((log, sm))
}

/// Opens one redb file, sorting redb's errors into the ones an operator can
/// act on: a lock (a second node on the same directory) and a bad file.
pub(crate) fn open_db(path: &Path) -> Result<Arc<Database>, StoreError> {
    let path_buf = path.to_path_buf();
    match Database::create(path) {
        Ok(db) => Ok(Arc::new(db)),
        Err(DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::Locked { path: path_buf }),
        Err(source @ DatabaseError::Storage(redb::StorageError::Corrupted(_))) => {
            Err(StoreError::Corrupt { path: path_buf, source })
        }
        Err(DatabaseError::Storage(redb::StorageError::Io(io))) if io.kind() == io::ErrorKind::InvalidData => {
            Err(StoreError::Corrupt { path: path_buf, source: DatabaseError::Storage(redb::StorageError::Io(io)) })
        }
        Err(source) => Err(StoreError::Open { path: path_buf, source }),
    }
}

/// Returns a mapper from any redb error to [`StoreError::Db`].
pub(crate) fn db_err<E: Into<redb::Error>>(file: &'static str, op: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Db { file, op, source: e.into() }
}

/// Encodes with field names, so a field added later does not shift the
/// meaning of stored bytes.
pub(crate) fn encode<T: Serialize>(file: &'static str, what: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(value).map_err(|source| StoreError::Encode { file, what, source })
}

/// Decodes what [`encode`] wrote.
pub(crate) fn decode<T: DeserializeOwned>(
    file: &'static str,
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    rmp_serde::from_slice(bytes).map_err(|source| StoreError::Decode { file, what, source })
}

/// Runs redb work off the async worker threads: a commit fsyncs, and a
/// blocked tokio worker would stall the mesh and the timers beside it.
pub(crate) async fn blocking<T, F>(file: &'static str, f: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Task { file, reason: e.to_string() })?
}
