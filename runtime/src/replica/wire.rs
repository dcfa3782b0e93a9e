//! The `pg` mesh class: what nodes send each other about process groups,
//! EVENTUAL names and `store.kv.crdt` stores.
//!
//! MessagePack with named fields, like the relay batches, so nodes of two
//! builds can talk during a rolling upgrade; decoding is depth-capped so a
//! hostile peer cannot recurse the decoder off the stack.

use serde::{Deserialize, Serialize};
use wippy_lua_stdlib::MAX_DEPTH;

use super::state::{Change, OriginState};
use crate::crdt::wire::KvWire;

/// Nesting the decoder accepts (stored values are Lua tables at most
/// `MAX_DEPTH` deep, three MessagePack levels each, plus the envelope).
const DECODE_MAX_DEPTH: usize = 3 * MAX_DEPTH + 16;

/// One frame of the `pg` class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Wire {
    /// The sender's change batch `seq`.
    Delta {
        /// The sender's incarnation.
        generation: u64,
        /// The batch number.
        seq: u64,
        /// The changes, in order.
        changes: Vec<Change>,
    },
    /// The sender's whole state as of batch `seq`.
    Snapshot {
        /// The sender's incarnation.
        generation: u64,
        /// The last batch it covers.
        seq: u64,
        /// The state.
        state: OriginState,
    },
    /// Where the sender stands (anti-entropy); a receiver that is behind
    /// answers with [`Wire::Pull`].
    Digest {
        /// The sender's incarnation.
        generation: u64,
        /// Its last batch.
        seq: u64,
    },
    /// "Send me your snapshot."
    Pull,
    /// From a client node to a member: send your name index, then every
    /// change to it.
    NamesWatch,
    /// From a member to a client node: name changes as of log index
    /// `applied`; `full` when it is the whole index.
    Names {
        /// The member's applied log index.
        applied: u64,
        /// The whole index (else only changes).
        full: bool,
        /// The names.
        changes: Vec<crate::raft::name_index::NameChange>,
    },
    /// `store.kv.crdt` traffic.
    Kv(KvWire),
    /// The cluster credential and peer deactivations.
    Access(crate::access::sync::AccessSync),
}

impl Wire {
    /// The frame payload.
    pub(crate) fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("plain data always serializes")
    }

    /// Reads a payload; bad bytes are an error, never a panic.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Wire, String> {
        let mut rest = bytes;
        let mut de = rmp_serde::Deserializer::new(&mut rest);
        de.set_max_depth(DECODE_MAX_DEPTH);
        let wire = Wire::deserialize(&mut de).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!("{} trailing bytes", rest.len()));
        }
        Ok(wire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::state::Binding;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let mut state = OriginState::default();
        state.apply(&Change::Join { scope: "s".into(), group: "g".into(), pid: "<a.0.1>".into() });
        state.apply(&Change::Bind { name: "n".into(), binding: Binding { pid: "<a.0.1>".into(), at: 3 } });
        let frames = [
            Wire::Delta { generation: 1, seq: 2, changes: vec![Change::Unbind { name: "n".into() }] },
            Wire::Snapshot { generation: 1, seq: 2, state },
            Wire::Digest { generation: 1, seq: 2 },
            Wire::Pull,
        ];
        for w in frames {
            assert_eq!(Wire::decode(&w.encode()), Ok(w));
        }
        assert!(Wire::decode(b"garbage").is_err());
        assert!(Wire::decode(&[]).is_err());
        let mut trailing = Wire::Pull.encode();
        trailing.push(0);
        assert!(Wire::decode(&trailing).is_err());
        let deep: Vec<u8> = std::iter::repeat_n(0x91, 10_000).collect();
        assert!(Wire::decode(&deep).is_err(), "deep nesting is refused, not recursed");
    }
}
