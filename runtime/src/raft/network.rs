//! openraft's network, over the mesh: one [`MeshClient`] per target node.

use std::future::Future;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{RaftNetworkFactory, RaftNetworkV2};

use super::rpc::{Answer, Call};
use super::snapshot::Bytes;
use super::transport::CallError;
use super::types::{RaftNode, TypeConfig};
use crate::shared::Shared;

/// Makes a [`MeshClient`] for each node openraft talks to.
pub(crate) struct MeshNetwork {
    /// This node's Raft id and name (the name is where replies go).
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) shared: Arc<Shared>,
}

impl RaftNetworkFactory<TypeConfig> for MeshNetwork {
    type Network = MeshClient;

    async fn new_client(&mut self, target: u64, node: &RaftNode) -> MeshClient {
        MeshClient { id: self.id, target, name: self.name.clone(), to: node.name.clone(), shared: self.shared.clone() }
    }
}

/// Sends one node's RPCs as `raft` frames and waits for the answers.
pub(crate) struct MeshClient {
    id: u64,
    target: u64,
    name: String,
    to: String,
    shared: Arc<Shared>,
}

impl MeshClient {
    /// One RPC: the call, its answer of the expected kind (`pick`), and
    /// failures in openraft's terms.
    async fn rpc<T>(
        &self,
        call: Call,
        ttl: Duration,
        action: RPCTypes,
        pick: fn(Answer) -> Option<T>,
    ) -> Result<T, RPCError<TypeConfig>> {
        match self.shared.raft_transport.call(&self.shared, &self.to, &self.name, call, ttl).await {
            Ok(answer) => pick(answer).ok_or_else(mismatch),
            Err(CallError::Unreachable(m)) => Err(RPCError::Unreachable(Unreachable::from_string(m))),
            Err(CallError::Timeout(timeout)) => {
                Err(RPCError::Timeout(Timeout { action, id: self.id, target: self.target, timeout }))
            }
            Err(CallError::Remote(m)) => Err(RPCError::Network(NetworkError::from_string(m))),
        }
    }
}

/// The answer to a vote or a pre-vote.
fn vote_answer(a: Answer) -> Option<VoteResponse<TypeConfig>> {
    if let Answer::Vote(r) = a { Some(r) } else { None }
}

/// An answer of the wrong kind: the peer runs something else.
fn mismatch() -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::from_string("answer does not match the call"))
}

impl RaftNetworkV2<TypeConfig> for MeshClient {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let pick = |a| if let Answer::Append(r) = a { Some(r) } else { None };
        self.rpc(Call::Append(rpc), option.soft_ttl(), RPCTypes::AppendEntries, pick).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.rpc(Call::Vote(rpc), option.soft_ttl(), RPCTypes::Vote, vote_answer).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.rpc(Call::PreVote(rpc), option.soft_ttl(), RPCTypes::Vote, vote_answer).await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let pick = |a| if let Answer::Transferred(r) = a { Some(r) } else { None };
        self.rpc(Call::TransferLeader(req), option.hard_ttl(), RPCTypes::TransferLeader, pick).await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Cursor<Vec<u8>>>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let data = snapshot.snapshot.into_inner();
        let total = data.len() as u64;
        let chunks = super::chunks::split(data.len(), super::chunks::CHUNK);
        let send = async {
            // Every chunk but the last is answered `Chunk`; the last one's
            // answer, or the first other answer, is the result.
            let mut result = Ok(Answer::Chunk);
            for range in chunks {
                let call = Call::Snapshot {
                    vote,
                    meta: snapshot.meta.clone(),
                    offset: range.start as u64,
                    total,
                    data: Bytes(data[range].to_vec()),
                };
                result =
                    self.shared.raft_transport.call(&self.shared, &self.to, &self.name, call, option.hard_ttl()).await;
                if !matches!(result, Ok(Answer::Chunk)) {
                    break;
                }
            }
            result
        };
        let result = tokio::select! {
            r = send => r,
            closed = cancel => return Err(StreamingError::Closed(closed)),
        };
        match result {
            Ok(Answer::Snapshot(r)) => Ok(r),
            Ok(_) => Err(StreamingError::Network(NetworkError::from_string("answer does not match the call"))),
            Err(CallError::Unreachable(m)) => Err(StreamingError::Unreachable(Unreachable::from_string(m))),
            Err(CallError::Timeout(timeout)) => Err(StreamingError::Timeout(Timeout {
                action: RPCTypes::InstallSnapshot,
                id: self.id,
                target: self.target,
                timeout,
            })),
            Err(CallError::Remote(m)) => Err(StreamingError::Network(NetworkError::from_string(m))),
        }
    }
}
