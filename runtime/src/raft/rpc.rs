//! Raft RPCs as they travel in the mesh's `raft` class.
//!
//! A request carries a call id and the caller's node name; the answer goes
//! back to that node with the same id. Both directions are MessagePack with
//! named fields, like the relay envelope, so nodes of two builds can still
//! talk during a rolling upgrade.

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotMetaOf, VoteOf};
use serde::{Deserialize, Serialize};

use super::request::{Reply, Request};
use super::snapshot::Bytes;
use super::types::TypeConfig;

/// One frame of the raft class.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Wire {
    /// A call from node `from`, to be answered with `id`.
    Request {
        /// Chosen by the caller; echoed in the reply.
        id: u64,
        /// The caller's node name, where the reply goes.
        from: String,
        /// What is asked.
        call: Call,
    },
    /// The answer to call `id`; `Err` carries the callee's error text.
    Reply {
        /// The call's id.
        id: u64,
        /// The outcome.
        result: Result<Answer, String>,
    },
}

/// The RPCs openraft makes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Call {
    /// Replicate entries (and heartbeats).
    Append(AppendEntriesRequest<TypeConfig>),
    /// Ask for a vote.
    Vote(VoteRequest<TypeConfig>),
    /// Ask whether a vote would be granted, without disturbing a leader.
    PreVote(VoteRequest<TypeConfig>),
    /// The leader hands leadership to the callee (it stops gracefully).
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// A client request (a write or a linearizable read) for the leader.
    /// Unlike the calls above it is accepted from any node of the cluster,
    /// members of the Raft configuration or not.
    Client(Request),
    /// Acknowledge (or, with `release`, forget) a pending STRONG name
    /// registration (`naming/strong.rs`). Answered by every node, Raft
    /// member or not.
    Reserve {
        /// The name.
        name: String,
        /// The registering process.
        pid: String,
        /// How long the acknowledgement holds.
        ttl_ms: u64,
        /// The registration finished: forget it.
        release: bool,
    },
    /// One chunk of a snapshot (see `chunks.rs`); the last one installs it.
    Snapshot {
        /// The leader's vote.
        vote: VoteOf<TypeConfig>,
        /// What the snapshot covers.
        meta: SnapshotMetaOf<TypeConfig>,
        /// Where this chunk starts in the snapshot.
        offset: u64,
        /// The snapshot's whole length.
        total: u64,
        /// The chunk's bytes.
        data: Bytes,
    },
}

/// The answers, one per kind of call.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    /// To `Call::Append`.
    Append(AppendEntriesResponse<TypeConfig>),
    /// To `Call::Vote` and `Call::PreVote`.
    Vote(VoteResponse<TypeConfig>),
    /// To the last chunk of `Call::Snapshot`.
    Snapshot(SnapshotResponse<TypeConfig>),
    /// To any other chunk: taken.
    Chunk,
    /// To `Call::TransferLeader`.
    Transferred(TransferLeaderResponse<TypeConfig>),
    /// To `Call::Client`, from the leader.
    Served(Reply),
    /// To `Call::Reserve`: `None` acknowledges, otherwise why not.
    Reserved(Option<String>),
    /// To `Call::Client`, from a node that does not lead: who does, if it
    /// knows. The request was not started, so it is safe to send again.
    Redirect(Option<String>),
}

/// Encodes a frame payload.
pub(crate) fn encode(wire: &Wire) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(wire).map_err(|e| e.to_string())
}

/// Decodes a frame payload; bad bytes are an error, never a panic.
pub(crate) fn decode(bytes: &[u8]) -> Result<Wire, String> {
    rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::Vote;

    #[test]
    fn calls_and_answers_round_trip() {
        let vote = Vote::new(3, 7);
        let req = VoteRequest::<TypeConfig>::new(vote, None);
        let bytes = encode(&Wire::Request { id: 9, from: "n1".into(), call: Call::Vote(req.clone()) }).unwrap();
        match decode(&bytes).unwrap() {
            Wire::Request { id: 9, from, call: Call::Vote(got) } => {
                assert_eq!(from, "n1");
                assert_eq!(got, req);
            }
            other => panic!("{other:?}"),
        }
        let reply = Wire::Reply { id: 9, result: Err("no leader".into()) };
        assert!(
            matches!(decode(&encode(&reply).unwrap()).unwrap(), Wire::Reply { id: 9, result: Err(e) } if e == "no leader")
        );
        assert!(decode(&[0xc1, 0, 1]).is_err());
    }
}
