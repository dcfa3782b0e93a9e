//! What a node asks of the Raft core on behalf of its processes, and what
//! it gets back. Requests are served by the leader: writes through the log,
//! reads from its state machine once a quorum has confirmed it still leads
//! (ReadIndex), so both are linearizable wherever they come from.

use serde::{Deserialize, Serialize};

use super::kv::Record;
use super::state_machine::StateMachine;
use super::store::StoreError;
use super::types::{Command, Response};

/// One request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Append a command to the log; answered once committed and applied.
    Write(Command),
    /// Read the replicated state.
    Read(Query),
}

/// A read of the replicated state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Query {
    /// One key's record.
    Get {
        /// The key.
        key: String,
    },
    /// Keys starting with `prefix` that sort after `after`, at most `limit`.
    List {
        /// The common prefix.
        prefix: String,
        /// Resume after this key (the previous page's last).
        after: Option<String>,
        /// Page size.
        limit: usize,
    },
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// To a write: what applying the command answered.
    Written(Response),
    /// To [`Query::Get`]: the live record, if any.
    Entry(Option<Record>),
    /// To [`Query::List`]: the page, in key order, and whether more follow.
    Page {
        /// Keys and records.
        rows: Vec<(String, Record)>,
        /// More keys match after the last one.
        more: bool,
    },
}

/// Answers `query` from `sm` as of `now_ms` (lifetimes end by the
/// answering node's clock).
pub(crate) fn read(sm: &StateMachine, query: &Query, now_ms: u64) -> Result<Reply, StoreError> {
    match query {
        Query::Get { key } => sm.entry(key, now_ms).map(Reply::Entry),
        Query::List { prefix, after, limit } => {
            let (rows, more) = sm.list(prefix, after.as_deref(), *limit, now_ms)?;
            Ok(Reply::Page { rows, more })
        }
    }
}
