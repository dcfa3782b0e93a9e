//! Writing to the replicated log from any node: on the leader directly,
//! elsewhere forwarded over the mesh to whoever leads now.

use std::time::{Duration, Instant};

use openraft::Raft;
use thiserror::Error;

use super::rpc::{Answer, Call};
use super::state_machine::StateMachine;
use super::types::{Command, Response, TypeConfig};
use crate::shared::Shared;

/// How long one write may take, retries included.
const DEADLINE: Duration = Duration::from_secs(5);
/// Pause before asking again when there is no leader or it just changed.
const RETRY: Duration = Duration::from_millis(50);

/// Why a write did not commit.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum WriteError {
    /// No leader could commit it in time: no quorum, or an election that
    /// did not settle. Whether it was applied is unknown.
    #[error("raft write not confirmed within {0:?} (no leader or no quorum)")]
    Timeout(Duration),
}

/// A node's way into the log.
#[derive(Clone)]
pub(crate) struct Writer {
    pub(crate) raft: Raft<TypeConfig, StateMachine>,
    pub(crate) shared: std::sync::Arc<Shared>,
    pub(crate) me: String,
}

impl Writer {
    /// Commits `cmd` and returns what applying it answered. Retries across
    /// leader changes until [`DEADLINE`].
    pub(crate) async fn write(&self, cmd: Command) -> Result<Response, WriteError> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WriteError::Timeout(DEADLINE));
            }
            let m = openraft::async_runtime::WatchReceiver::borrow_watched(&self.raft.metrics()).clone();
            let leader = m.current_leader.and_then(|id| m.membership_config.membership().get_node(&id).cloned());
            let done = match leader {
                Some(l) if l.name == self.me => tokio::time::timeout(left, self.raft.client_write(cmd.clone()))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|r| r.data),
                Some(l) => self.forward(&l.name, cmd.clone(), left).await,
                None => None,
            };
            if let Some(resp) = done {
                return Ok(resp);
            }
            tokio::time::sleep(RETRY.min(left)).await;
        }
    }

    /// Sends the write to `leader` and waits up to `within` for its answer.
    async fn forward(&self, leader: &str, cmd: Command, within: Duration) -> Option<Response> {
        let transport = &self.shared.raft_transport;
        match transport.call(&self.shared, leader, &self.me, Call::Write(cmd), within).await {
            Ok(Answer::Written(r)) => Some(r),
            _ => None,
        }
    }
}
