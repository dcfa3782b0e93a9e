//! The local Raft instance as peers reach it: consensus calls from members
//! of the configuration, and client requests from any node, served here
//! when this node leads and redirected to the leader otherwise.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use openraft::errors::{ClientWriteError, RaftError};
use openraft::{Raft, ReadPolicy, ServerState};

use super::chunks::Assembly;
use super::request::{self, Reply, Request};
use super::rpc::{Answer, Call};
use super::state_machine::{StateMachine, wall_ms};
use super::store::blocking;
use super::transport::{CallFuture, Endpoint};
use super::types::{TypeConfig, node_id};

/// This node's Raft instance and the state machine it applies to.
#[derive(Clone)]
pub(crate) struct LocalRaft {
    pub(crate) raft: Raft<TypeConfig, StateMachine>,
    pub(crate) sm: StateMachine,
    /// Snapshots arriving in chunks.
    pub(crate) assembly: Arc<Mutex<Assembly>>,
}

/// Why the local instance did not serve a request.
#[derive(Debug)]
pub(crate) enum NotServed {
    /// This node does not lead; the request was not started. Carries the
    /// leader's name when known.
    NotLeader(Option<String>),
    /// It was started but failed (lost leadership mid-way, storage error):
    /// a write may or may not have been applied.
    Failed(String),
}

impl LocalRaft {
    /// The leader's node name as this node's Raft view has it, and whether
    /// that is this node.
    pub(crate) fn leader(&self) -> (Option<String>, bool) {
        // Borrowed, not cloned: this runs for every request, and the
        // metrics carry per-follower maps.
        let rx = self.raft.metrics();
        let m = openraft::async_runtime::WatchReceiver::borrow_watched(&rx);
        let name =
            m.current_leader.and_then(|id| m.membership_config.membership().get_node(&id).map(|n| n.name.clone()));
        (name, m.state == ServerState::Leader)
    }

    /// Serves `req` if this node leads.
    pub(crate) async fn serve(&self, req: Request) -> Result<Reply, NotServed> {
        let (leader, leading) = self.leader();
        if !leading {
            return Err(NotServed::NotLeader(leader));
        }
        match req {
            Request::Write(cmd) => match self.raft.client_write(cmd).await {
                Ok(r) => Ok(Reply::Written(r.data)),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    Err(NotServed::NotLeader(f.leader_node.map(|n| n.name)))
                }
                Err(e) => Err(NotServed::Failed(e.to_string())),
            },
            Request::Read(query) => {
                if let Err(e) = self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
                    return Err(match e {
                        RaftError::APIError(openraft::errors::LinearizableReadError::ForwardToLeader(f)) => {
                            NotServed::NotLeader(f.leader_node.map(|n| n.name))
                        }
                        other => NotServed::Failed(other.to_string()),
                    });
                }
                let sm = self.sm.clone();
                let now = wall_ms();
                blocking(super::store::STATE_FILE, move || request::read(&sm, &query, now))
                    .await
                    .map_err(|e| NotServed::Failed(e.to_string()))
            }
        }
    }
}

impl Endpoint for LocalRaft {
    fn answer(&self, from: &str, call: Call) -> CallFuture {
        let this = self.clone();
        if let Call::Client(req) = call {
            return Box::pin(async move {
                match this.serve(req).await {
                    Ok(reply) => Ok(Answer::Served(reply)),
                    Err(NotServed::NotLeader(leader)) => Ok(Answer::Redirect(leader)),
                    Err(NotServed::Failed(e)) => Err(e),
                }
            });
        }
        // A node that belongs to a Raft cluster takes consensus calls only
        // from members of its configuration: a leader of another cluster
        // (two nodes that each bootstrapped alone) must not feed it a log
        // it cannot agree with.
        let raft = this.raft;
        let assembly = this.assembly;
        let from = from.to_owned();
        let rx = raft.metrics();
        let refused = {
            let m = openraft::async_runtime::WatchReceiver::borrow_watched(&rx);
            let membership = m.membership_config.membership();
            membership.voter_ids().next().is_some() && membership.get_node(&node_id(&from)).is_none()
        };
        if refused {
            let msg = format!("{from} is not in this node's Raft configuration (another Raft cluster?)");
            return Box::pin(async move { Err(msg) });
        }
        Box::pin(async move {
            let text = |e: RaftError<TypeConfig>| e.to_string();
            match call {
                Call::Append(req) => raft.append_entries(req).await.map(Answer::Append).map_err(text),
                Call::Vote(req) => raft.vote(req).await.map(Answer::Vote).map_err(text),
                Call::PreVote(req) => raft.pre_vote(req).await.map(Answer::Vote).map_err(text),
                Call::TransferLeader(req) => {
                    raft.handle_transfer_leader(req).await.map(Answer::Transferred).map_err(|e| e.to_string())
                }
                Call::Snapshot { vote, meta, offset, total, data } => {
                    let covers = meta.last_log_id;
                    let whole = assembly
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .accept(&from, covers, offset, total, data.0)?;
                    match whole {
                        None => Ok(Answer::Chunk),
                        Some(data) => raft
                            .install_full_snapshot(vote, openraft::Snapshot { meta, snapshot: Cursor::new(data) })
                            .await
                            .map(Answer::Snapshot)
                            .map_err(|e| e.to_string()),
                    }
                }
                // Answered above, before the membership check.
                Call::Client(_) => Err("client request on the consensus path".to_owned()),
                Call::Reserve { .. } => Err("a name reservation on the consensus path".to_owned()),
            }
        })
    }
}
