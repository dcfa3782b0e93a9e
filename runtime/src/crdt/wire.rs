//! What nodes send each other about `store.kv.crdt` namespaces (inside
//! the `pg` mesh class, see `replica/wire.rs`).

use serde::{Deserialize, Serialize};

use super::map::Entry;

/// One `store.kv.crdt` message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum KvWire {
    /// New writes, sent to every peer as they happen.
    Delta {
        /// The namespace.
        ns: String,
        /// Key and entry of each write.
        entries: Vec<(String, Entry)>,
    },
    /// The digest of every namespace the sender holds (anti-entropy); a
    /// receiver whose digest differs answers with its whole namespace.
    Digest {
        /// `(namespace, digest)`.
        digests: Vec<(String, u64)>,
    },
    /// A whole namespace, or the part the receiver lacks. `answer` asks
    /// the receiver to send back what it holds newer.
    State {
        /// The namespace.
        ns: String,
        /// Its entries.
        entries: Vec<(String, Entry)>,
        /// Send back the entries the sender lacks.
        answer: bool,
    },
}
