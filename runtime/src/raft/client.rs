//! How any node of the cluster gets a request served by the Raft leader:
//! locally when it leads, otherwise over the mesh to the leader it knows
//! of, or to any member, which redirects to the leader.
//!
//! Retrying is safe only while the request cannot have started, so the
//! client retries on a redirect or when nothing could be sent, and gives
//! up with [`ClientError::Unknown`] once a write was handed to a leader
//! that then failed to answer: the write may have been applied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::endpoint::NotServed;
use super::request::{Reply, Request};
use super::rpc::{Answer, Call};
use super::transport::CallError;
use crate::shared::Shared;

/// How long one request may take, redirects and retries included.
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);
/// Pause before asking again when there is no leader or it just changed.
const RETRY: Duration = Duration::from_millis(50);

/// Why a request was not served.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum ClientError {
    /// No leader took the request within the deadline (no quorum, an
    /// election that did not settle, no member reachable). Nothing was
    /// applied.
    #[error("no raft leader reachable within {0:?}")]
    NoLeader(Duration),
    /// A leader took the request and then failed or fell silent: a write
    /// may or may not have been applied.
    #[error("raft request outcome unknown: {0}")]
    Unknown(String),
}

/// Serves `req` through the current leader, from this node.
pub(crate) async fn request(shared: &Arc<Shared>, req: Request) -> Result<Reply, ClientError> {
    let deadline = Instant::now() + DEADLINE;
    let is_write = matches!(req, Request::Write(_));
    let mut hint: Option<String> = None;
    let mut tried: Vec<String> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClientError::NoLeader(DEADLINE));
        }
        let local = shared.raft_local.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut target = hint.take();
        if let Some(local) = &local {
            let (leader, leading) = local.leader();
            if leading {
                match tokio::time::timeout(left, local.serve(req.clone())).await {
                    Ok(Ok(reply)) => return Ok(reply),
                    Ok(Err(NotServed::NotLeader(l))) => target = l,
                    Ok(Err(NotServed::Failed(e))) if is_write => return Err(ClientError::Unknown(e)),
                    Ok(Err(NotServed::Failed(_))) => {}
                    Err(_) if is_write => return Err(ClientError::Unknown("no answer from the leader".into())),
                    Err(_) => return Err(ClientError::NoLeader(DEADLINE)),
                }
            } else {
                target = target.or(leader);
            }
        }
        let target = target.or_else(|| any_member(shared, &tried));
        let Some(to) = target.filter(|t| *t != shared.node_id) else {
            tried.clear();
            tokio::time::sleep(RETRY.min(left)).await;
            continue;
        };
        let call = Call::Client(req.clone());
        match shared.raft_transport.call(shared, &to, &shared.node_id, call, left).await {
            Ok(Answer::Served(reply)) => return Ok(reply),
            Ok(Answer::Redirect(Some(leader))) if leader != to => hint = Some(leader),
            Ok(_) | Err(CallError::Unreachable(_)) => {
                tried.push(to);
                tokio::time::sleep(RETRY.min(left)).await;
            }
            Err(CallError::Remote(e)) if is_write => return Err(ClientError::Unknown(e)),
            Err(CallError::Timeout(_)) if is_write => {
                return Err(ClientError::Unknown(format!("no answer from {to}")));
            }
            Err(_) => {
                tried.push(to);
                tokio::time::sleep(RETRY.min(left)).await;
            }
        }
    }
}

/// A live peer that said it belongs to a formed Raft cluster, other than
/// the ones already tried: where a node outside the configuration sends
/// its first request.
fn any_member(shared: &Shared, tried: &[String]) -> Option<String> {
    let status = shared.peer_status.lock().unwrap_or_else(|e| e.into_inner());
    let view = shared.cluster.read().unwrap_or_else(|e| e.into_inner());
    view.iter()
        .flatten()
        .filter(|m| m.state.is_up() && m.name != shared.node_id)
        .filter(|m| status.get(&m.name).is_some_and(|s| s.member))
        .map(|m| m.name.clone())
        .find(|n| !tried.contains(n))
}
