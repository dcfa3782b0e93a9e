//! The Raft service: a thread running the openraft instance of this node,
//! bootstrapping a fresh cluster, publishing the node's Raft status, and,
//! while this node leads, moving the configuration towards the roles the
//! ranking wants.
//!
//! Everything it decides comes from the pure cores (`bootstrap.rs`,
//! `roles.rs`, `plan.rs`); this file only feeds them the gossip view and
//! openraft's metrics, and carries out their answers.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openraft::{Raft, SnapshotPolicy};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use super::bootstrap::Bootstrap;
use super::churn::Churn;
use super::endpoint::LocalRaft;
use super::network::MeshNetwork;
use super::round::Loop;
#[cfg(test)]
use super::state_machine::StateMachine;
use super::store::{self, StoreError};
use super::types::node_id;
use crate::shared::Shared;

/// How often the service looks at gossip and at openraft's metrics.
pub(super) const TICK: Duration = Duration::from_millis(100);
/// How long gossip must show the same eligible nodes before bootstrap.
const BOOTSTRAP_WINDOW: Duration = Duration::from_secs(2);

/// The `cluster.raft.*` settings the service needs. Built by the binary.
#[derive(Clone, Debug)]
pub struct RaftOptions {
    /// Where the log and the state machine live (`<data_dir>/_sys/raft`).
    /// `None`: diskless, in a temporary directory removed at stop.
    pub data_dir: Option<PathBuf>,
    /// `bootstrap_expect`: 0 never, 1 alone (only without seeds), N when N
    /// nodes see each other.
    pub bootstrap_expect: usize,
    /// `cluster.membership.join_addrs` is not empty, or the peer book
    /// holds admitted peers (the node sets this at start).
    pub has_seeds: bool,
    /// Voting seats (odd, at most 5).
    pub max_voters: usize,
    /// Non-voting standby seats (at most 4).
    pub max_standbys: usize,
    /// A follower that hears no leader this long calls an election.
    pub heartbeat_timeout: Duration,
    /// How long the leader waits for the view to settle before it
    /// reassigns seats.
    pub reconcile_debounce: Duration,
    /// Time limit for one membership change (`reconcile_timeout`).
    pub reconcile_timeout: Duration,
    /// Take a snapshot after this many new entries.
    pub snapshot_threshold: u64,
    /// Entries kept behind a snapshot for followers that are slightly behind.
    pub trailing_logs: u64,
    /// Without contact with a Raft majority for this long, this node's
    /// lock holders are told their locks are lost.
    pub lock_lease: Duration,
}

/// Why the service could not start.
#[derive(Debug, Error)]
pub enum RaftStartError {
    /// The log or the state machine could not be opened.
    #[error("raft storage: {0}")]
    Store(String),
    /// openraft refused the configuration or could not start.
    #[error("raft: {0}")]
    Raft(String),
    /// The thread or its runtime could not be created.
    #[error("could not start the raft thread: {0}")]
    Thread(std::io::Error),
}

impl From<StoreError> for RaftStartError {
    fn from(e: StoreError) -> Self {
        RaftStartError::Store(e.to_string())
    }
}

/// A running Raft service; [`RaftService::stop`] shuts openraft down and
/// joins the thread.
pub(crate) struct RaftService {
    /// The local replica, for tests that look at it directly.
    #[cfg(test)]
    sm: StateMachine,
    #[cfg(test)]
    handle: tokio::runtime::Handle,
    cancel: CancellationToken,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    /// The diskless run's directory, removed at stop.
    scratch: Option<PathBuf>,
}

impl RaftService {
    /// Opens the storage (so a bad data directory fails the node's start),
    /// then starts openraft on its own thread.
    pub(crate) fn start(opts: &RaftOptions, shared: Arc<Shared>) -> Result<RaftService, RaftStartError> {
        let (dir, scratch) = match &opts.data_dir {
            Some(d) => (d.join("_sys").join("raft"), None),
            None => {
                let d = std::env::temp_dir().join(format!("wippy-diskless-{}-{}", shared.node_id, std::process::id()));
                tracing::warn!(dir = %d.display(), "raft: no data directory resolves; running diskless (state is lost at stop)");
                (d.clone(), Some(d))
            }
        };
        let (log, sm) = store::open(&dir)?;
        // Client nodes following this member's names hear of every change.
        let weak = Arc::downgrade(&shared);
        sm.names.listen(Box::new(move |changes| {
            if let Some(shared) = weak.upgrade() {
                shared.forward_names(changes);
            }
        }));
        let config = openraft_config(opts).map_err(|e| RaftStartError::Raft(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(RaftStartError::Thread)?;
        let me = shared.node_id.clone();
        let id = node_id(&me);
        let network = MeshNetwork { id, name: me.clone(), shared: shared.clone() };
        let raft = rt
            .block_on(Raft::new(id, Arc::new(config), network, log, sm.clone()))
            .map_err(|e| RaftStartError::Raft(e.to_string()))?;
        let local = LocalRaft { raft: raft.clone(), sm: sm.clone(), assembly: Default::default() };
        shared.raft_transport.set_endpoint(Some(Arc::new(local.clone())));
        *shared.raft_local.write().unwrap_or_else(|e| e.into_inner()) = Some(local);
        // Processes start right after this returns, before the first round
        // publishes a status: until then the node is a member-to-be, not a
        // node without Raft (`system.raft.role()` must not fail).
        *shared.raft_status.write().unwrap_or_else(|e| e.into_inner()) = Some(wippy_lua_stdlib::RaftStatus {
            role: "non-member".to_owned(),
            term: 0,
            commit_index: 0,
            leader: String::new(),
            stats: Vec::new(),
        });
        *shared.raft_liveness.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), opts.heartbeat_timeout));
        #[cfg(test)]
        let sm_read = sm.clone();
        #[cfg(test)]
        let handle = rt.handle().clone();
        let cancel = CancellationToken::new();
        let state = Loop {
            raft,
            sm,
            shared: shared.clone(),
            opts: opts.clone(),
            id,
            boot: Bootstrap::new(id, opts.bootstrap_expect, opts.max_voters, BOOTSTRAP_WINDOW, opts.has_seeds),
            view: BTreeSet::new(),
            view_since: Instant::now(),
            last_leader: None,
            last_sweep: None,
            last_orphan_sweep: None,
            orphan_grace: Default::default(),
            churn: Churn::default(),
            foreign: BTreeSet::new(),
        };
        let stop = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("wippy-raft".into())
            .spawn(move || rt.block_on(state.run(stop)))
            .map_err(RaftStartError::Thread)?;
        tracing::info!(node = %me, id, dir = %dir.display(), expect = opts.bootstrap_expect, "raft started");
        Ok(RaftService {
            #[cfg(test)]
            sm: sm_read,
            #[cfg(test)]
            handle,
            cancel,
            thread: Some(thread),
            shared,
            scratch,
        })
    }

    /// Commits `cmd` through the leader and waits for it (blocking the
    /// calling thread; the work runs on the Raft thread).
    #[cfg(test)]
    pub(crate) fn write(
        &self,
        cmd: super::types::Command,
    ) -> Result<super::types::Response, super::client::ClientError> {
        use super::client::{ClientError, request};
        use super::request::{Reply, Request};
        let shared = self.shared.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(request(&shared, Request::Write(cmd)).await);
        });
        match rx.recv() {
            Ok(Ok(Reply::Written(r))) => Ok(r),
            Ok(Ok(other)) => Err(ClientError::Unknown(format!("unexpected reply {other:?}"))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Unknown("the raft thread stopped".into())),
        }
    }

    /// The value of `key` in this node's replica.
    #[cfg(test)]
    pub(crate) fn read(&self, key: &str) -> Option<Vec<u8>> {
        self.sm.get(key).ok().flatten()
    }

    /// Shuts openraft down and waits for the thread.
    pub(crate) fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.raft_transport.set_endpoint(None);
        *self.shared.raft_local.write().unwrap_or_else(|e| e.into_inner()) = None;
        *self.shared.raft_liveness.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.shared.raft_status.write().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(d) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Drop for RaftService {
    fn drop(&mut self) {
        self.halt();
    }
}

/// openraft's configuration from ours. The follower's timeout is
/// `heartbeat_timeout` (randomised up to twice that, so followers do not
/// all stand at once), and the leader heartbeats six times per timeout.
fn openraft_config(opts: &RaftOptions) -> Result<openraft::Config, openraft::ConfigError> {
    let timeout = u64::try_from(opts.heartbeat_timeout.as_millis()).unwrap_or(u64::MAX).max(10);
    let config = openraft::Config {
        cluster_name: "wippy".into(),
        election_timeout_min: timeout,
        election_timeout_max: timeout.saturating_mul(2),
        heartbeat_interval: (timeout / 6).max(5),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(opts.snapshot_threshold.max(1)),
        max_in_snapshot_log_to_keep: opts.trailing_logs,
        enable_pre_vote: Some(true),
        // A node whose disk was wiped comes back with an empty log; the
        // leader must be allowed to replicate to it from the start.
        allow_log_reversion: Some(true),
        // Applies and the committed id are not fsynced (the log is the
        // record), so a restarted leader does not know how far it had
        // committed. It must win a new election, whose first entry commits
        // everything before it, instead of resuming its old term: resuming
        // would serve reads from a state missing acknowledged writes.
        enable_leader_restore: Some(false),
        ..Default::default()
    };
    config.validate()
}
