//! The Raft service: a thread running the openraft instance of this node,
//! bootstrapping a fresh cluster, publishing the node's Raft status, and,
//! while this node leads, moving the configuration towards the roles the
//! ranking wants.
//!
//! Everything it decides comes from the pure cores (`bootstrap.rs`,
//! `roles.rs`, `plan.rs`); this file only feeds them the gossip view and
//! openraft's metrics, and carries out their answers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openraft::{ChangeMembers, Raft, ServerState, SnapshotPolicy};
use sha2::Digest;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use wippy_lua_stdlib::RaftStatus;

use super::bootstrap::{Bootstrap, Decision};
use super::churn::Churn;
use super::endpoint::LocalRaft;
use super::network::MeshNetwork;
use super::plan::{Config as Seats, Liveness, Step, plan};
use super::roles::{Candidate, Seat, choose};
use super::state_machine::StateMachine;
use super::state_machine::wall_ms;
use super::store::{self, StoreError};
use super::types::{Command, RaftNode, TypeConfig, node_id};
use crate::shared::Shared;

/// How often the service looks at gossip and at openraft's metrics.
const TICK: Duration = Duration::from_millis(100);
/// How long gossip must show the same eligible nodes before bootstrap.
const BOOTSTRAP_WINDOW: Duration = Duration::from_secs(2);
/// Where the replicated state keeps the cluster's id (outside the `kv/`
/// space of the stores).
const CLUSTER_KEY: &str = "_sys/cluster";
/// The owner of records tied to one incarnation of a node.
pub(crate) fn owner_id(node: &str, generation: u64) -> String {
    format!("{node}#{generation}")
}

/// How often the leader sweeps keys whose lifetime has ended. Reads hide
/// them from the moment they end; the sweep only frees the space.
const EXPIRY_SWEEP: Duration = Duration::from_secs(1);
/// A learner this close to the leader's last log index may be promoted.
const CAUGHT_UP: u64 = 64;

/// The `cluster.raft.*` settings the service needs. Built by the binary.
#[derive(Clone, Debug)]
pub struct RaftOptions {
    /// Where the log and the state machine live (`<data_dir>/_sys/raft`).
    /// `None`: diskless, in a temporary directory removed at stop.
    pub data_dir: Option<PathBuf>,
    /// `bootstrap_expect`: 0 never, 1 alone (only without seeds), N when N
    /// nodes see each other.
    pub bootstrap_expect: usize,
    /// `cluster.membership.join_addrs` is not empty.
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
            churn: Churn::default(),
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
    pub(crate) fn write(&self, cmd: Command) -> Result<super::types::Response, super::client::ClientError> {
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

/// The service's state between ticks.
struct Loop {
    raft: Raft<TypeConfig, StateMachine>,
    sm: StateMachine,
    shared: Arc<Shared>,
    opts: RaftOptions,
    id: u64,
    boot: Bootstrap,
    /// The candidates last seen, and since when, for the reconcile debounce.
    view: BTreeSet<u64>,
    view_since: Instant,
    last_leader: Option<u64>,
    /// When the leader last proposed an expiry sweep.
    last_sweep: Option<Instant>,
    /// When the leader last looked for records of departed nodes.
    last_orphan_sweep: Option<Instant>,
    churn: Churn,
}

impl Loop {
    async fn run(mut self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => break,
            }
            // A step can wait on a commit that never comes (no quorum);
            // stopping must not wait for it.
            tokio::select! {
                () = self.step() => {}
                () = stop.cancelled() => break,
            }
        }
        self.hand_over().await;
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft: shutdown failed");
        }
        tracing::debug!("raft stopped");
    }

    async fn step(&mut self) {
        let m = openraft::async_runtime::WatchReceiver::borrow_watched(&self.raft.metrics()).clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let learners: BTreeSet<u64> = membership.learner_ids().collect();
        let initialized = !voters.is_empty();
        let cluster = self.cluster_id();
        self.shared.set_raft_member(initialized, cluster.clone());
        self.publish(&m, &voters, &learners);
        if m.current_leader != self.last_leader {
            self.last_leader = m.current_leader;
            self.shared.stats.raft_leader_changes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let (candidates, nodes) = self.candidates(&voters, &learners);
        let now = Instant::now();
        if !initialized {
            if let Decision::Initialize(ids) = self.boot.observe(now, &candidates, self.shared.raft_cluster_visible()) {
                let members: BTreeMap<u64, RaftNode> =
                    ids.iter().filter_map(|id| nodes.get(id).map(|n| (*id, n.clone()))).collect();
                tracing::info!(voters = ?members.values().map(|n| n.name.as_str()).collect::<Vec<_>>(), "raft: bootstrapping");
                if let Err(e) = self.raft.initialize(members).await {
                    tracing::info!(error = %e, "raft: initialize refused");
                }
            }
            return;
        }
        if m.state != ServerState::Leader {
            return;
        }
        if cluster.is_none() {
            self.name_cluster().await;
        }
        self.expire().await;
        self.sweep_orphans().await;
        let ids: BTreeSet<u64> = candidates.iter().map(|c| c.id).collect();
        if ids != self.view {
            self.view = ids;
            self.view_since = now;
        }
        if now.duration_since(self.view_since) < self.opts.reconcile_debounce {
            return;
        }
        // Nodes that belong to another Raft cluster (they bootstrapped on
        // their own) are left alone: adding them would mix two logs.
        let ours: BTreeSet<u64> = voters.union(&learners).copied().collect();
        let foreign = self.shared.peer_status.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // A former member that comes back carries this cluster's id and is
        // taken back in.
        let candidates: Vec<Candidate> = candidates
            .into_iter()
            .filter(|c| {
                let name = nodes.get(&c.id).map(|n| n.name.as_str()).unwrap_or_default();
                let other = foreign.get(name).is_some_and(|s| s.member && (cluster.is_none() || s.cluster != cluster));
                ours.contains(&c.id) || !other
            })
            .collect();
        let want = choose(&candidates, self.opts.max_voters, self.opts.max_standbys);
        let last = m.last_log_index.unwrap_or(0);
        let caught_up: BTreeSet<u64> = m
            .replication
            .iter()
            .flatten()
            .filter(|(_, matched)| matched.as_ref().is_some_and(|l| l.index + CAUGHT_UP >= last))
            .map(|(id, _)| *id)
            .collect();
        // A voter is evicted only when gossip says it is gone and it has
        // stopped answering heartbeats as well.
        let heard = |id: &u64| {
            m.heartbeat
                .as_ref()
                .and_then(|h| h.get(id))
                .and_then(|i| i.as_ref())
                .is_some_and(|i| openraft::Instant::elapsed(&**i) < self.opts.heartbeat_timeout)
        };
        let alive: BTreeSet<u64> =
            self.view.iter().copied().chain([self.id]).chain(voters.iter().copied().filter(heard)).collect();
        // A new configuration's quorum is counted only from nodes that are
        // up in gossip and, if they vote now, still answer.
        let live: BTreeSet<u64> =
            self.view.iter().copied().filter(|id| !voters.contains(id) || heard(id)).chain([self.id]).collect();
        let seen = Liveness { alive, live };
        let steps = plan(&Seats { voters, learners: learners.clone() }, &want, &caught_up, &seen);
        // One change at a time: each goes through joint consensus, and
        // the next round plans again from the configuration it produced.
        if let Some(first) = steps.into_iter().next() {
            let limit = self.opts.reconcile_timeout;
            if tokio::time::timeout(limit, self.apply(first, &nodes, &learners)).await.is_err() {
                tracing::info!(?limit, "raft: membership change not committed in time; retrying next round");
            }
        }
    }

    /// On a graceful stop of the leader: hands leadership to the most
    /// caught-up voter and waits (up to one heartbeat timeout) until it has
    /// it, so the cluster goes on at once instead of waiting out an
    /// election timeout.
    async fn hand_over(&self) {
        let (to, term) = {
            let rx = self.raft.metrics();
            let m = openraft::async_runtime::WatchReceiver::borrow_watched(&rx);
            if m.state != ServerState::Leader {
                return;
            }
            let voters: BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
            let best = m
                .replication
                .iter()
                .flatten()
                .filter(|(id, _)| **id != self.id && voters.contains(id))
                .max_by_key(|(id, matched)| (matched.as_ref().map(|l| l.index), std::cmp::Reverse(**id)))
                .map(|(id, _)| *id);
            (best, m.current_term)
        };
        let Some(to) = to else { return };
        if let Err(e) = self.raft.trigger().transfer_leader(to).await {
            tracing::info!(error = %e, "raft: leadership hand-over not started");
            return;
        }
        let wait = self.raft.wait(Some(self.opts.heartbeat_timeout));
        let moved = wait
            .metrics(
                |m| m.current_term > term && m.current_leader.is_some_and(|l| l != self.id),
                "leadership handed over",
            )
            .await;
        match moved {
            Ok(_) => tracing::info!(to, "raft: handed leadership over before stopping"),
            Err(e) => tracing::info!(error = %e, "raft: leadership hand-over did not finish; stopping anyway"),
        }
    }

    /// Removes records whose owner (a node incarnation, see
    /// [`owner_id`]) is no longer up in gossip: locks of a node that died or
    /// left, or of a previous life of a restarted node. At most once per
    /// [`EXPIRY_SWEEP`], and a bounded batch each time.
    async fn sweep_orphans(&mut self) {
        if self.last_orphan_sweep.is_some_and(|t| t.elapsed() < EXPIRY_SWEEP) {
            return;
        }
        self.last_orphan_sweep = Some(Instant::now());
        let up: BTreeSet<String> = {
            let view = self.shared.cluster.read().unwrap_or_else(|e| e.into_inner());
            view.iter().flatten().filter(|m| m.state.is_up()).map(|m| owner_id(&m.name, m.generation)).collect()
        };
        let orphans = match self.sm.orphans(&up, 256) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "raft: cannot list records of departed nodes");
                return;
            }
        };
        for (key, version) in orphans {
            let cmd =
                Command::Delete { key: key.clone(), cond: super::types::Cond::Version(version), now_ms: wall_ms() };
            match tokio::time::timeout(EXPIRY_SWEEP, self.raft.client_write(cmd)).await {
                Ok(Ok(_)) => tracing::info!(%key, "raft: removed a record of a node that left"),
                _ => return,
            }
        }
    }

    /// This Raft cluster's id as the local replica has it.
    fn cluster_id(&self) -> Option<String> {
        let record = self.sm.entry(CLUSTER_KEY, 0).ok().flatten()?;
        String::from_utf8(record.value.0).ok()
    }

    /// Gives a newly formed cluster its id: written once, by whichever
    /// leader gets there first (the put only applies to an absent key).
    async fn name_cluster(&self) {
        let seed = format!("{}/{}/{:?}", self.shared.node_id, std::process::id(), std::time::SystemTime::now());
        let id: String = sha2::Sha256::digest(seed.as_bytes())[..8].iter().map(|b| format!("{b:02x}")).collect();
        let cmd = Command::Put {
            key: CLUSTER_KEY.to_owned(),
            value: id.into_bytes(),
            cond: super::types::Cond::Absent,
            ttl_ms: None,
            now_ms: wall_ms(),
            owner: None,
        };
        match tokio::time::timeout(self.opts.reconcile_timeout, self.raft.client_write(cmd)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "raft: cluster id not committed"),
            Err(_) => tracing::debug!("raft: cluster id not committed in time"),
        }
    }

    /// Proposes the removal of keys whose lifetime has ended, at most once
    /// per [`EXPIRY_SWEEP`], so every replica drops them at the same index.
    async fn expire(&mut self) {
        let now = wall_ms();
        if self.last_sweep.is_some_and(|t| t.elapsed() < EXPIRY_SWEEP) {
            return;
        }
        if self.sm.next_expiry().ok().flatten().is_none_or(|t| t > now) {
            return;
        }
        self.last_sweep = Some(Instant::now());
        match tokio::time::timeout(EXPIRY_SWEEP, self.raft.client_write(Command::Expire { now_ms: now })).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "raft: expiry sweep not committed"),
            Err(_) => tracing::debug!("raft: expiry sweep not committed in time"),
        }
    }

    /// Live members as ranking candidates, with their Raft node records.
    fn candidates(
        &self,
        voters: &BTreeSet<u64>,
        learners: &BTreeSet<u64>,
    ) -> (Vec<Candidate>, BTreeMap<u64, RaftNode>) {
        let view = self.shared.cluster.read().unwrap_or_else(|e| e.into_inner());
        let mut cands = Vec::new();
        let mut nodes = BTreeMap::new();
        for m in view.iter().flatten().filter(|m| m.state.is_up()) {
            let id = node_id(&m.name);
            cands.push(Candidate {
                id,
                eligible: m.raft_eligible,
                priority: m.raft_priority,
                failure_domain: m.failure_domain.clone(),
                seat: if voters.contains(&id) {
                    Seat::Voter
                } else if learners.contains(&id) {
                    Seat::Standby
                } else {
                    Seat::None
                },
            });
            nodes.insert(id, RaftNode { name: m.name.clone(), addr: m.internode.to_string() });
        }
        (cands, nodes)
    }

    async fn apply(&mut self, step: Step, nodes: &BTreeMap<u64, RaftNode>, learners: &BTreeSet<u64>) {
        tracing::info!(?step, "raft: reconciling");
        let voters_change = matches!(step, Step::Promote(_) | Step::Demote(_))
            || matches!(&step, Step::Remove(ids) if ids.iter().any(|id| !learners.contains(id)));
        if voters_change && self.churn.record(Instant::now()) {
            self.shared.stats.raft_churn_bursts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!("raft: voters changed three times within a minute");
        }
        let result = match step {
            Step::AddLearners(ids) => {
                for id in ids {
                    let Some(node) = nodes.get(&id) else { continue };
                    if let Err(e) = self.raft.add_learner(id, node.clone(), false).await {
                        tracing::info!(node = %node.name, error = %e, "raft: add learner failed");
                    }
                }
                Ok(())
            }
            Step::Promote(ids) => self.raft.change_membership(ChangeMembers::AddVoterIds(ids), false).await.map(drop),
            Step::Demote(ids) => self.raft.change_membership(ChangeMembers::RemoveVoters(ids), true).await.map(drop),
            Step::Remove(ids) => {
                let (gone_learners, gone_voters): (BTreeSet<u64>, BTreeSet<u64>) =
                    ids.into_iter().partition(|id| learners.contains(id));
                let mut r = Ok(());
                if !gone_voters.is_empty() {
                    r = self.raft.change_membership(ChangeMembers::RemoveVoters(gone_voters), false).await.map(drop);
                }
                if r.is_ok() && !gone_learners.is_empty() {
                    r = self.raft.change_membership(ChangeMembers::RemoveNodes(gone_learners), false).await.map(drop);
                }
                r
            }
        };
        if let Err(e) = result {
            tracing::info!(error = %e, "raft: membership change refused; retrying next round");
        }
    }

    /// Writes this node's status for `system.raft.*` and `/metrics`.
    fn publish(&self, m: &openraft::RaftMetrics<TypeConfig>, voters: &BTreeSet<u64>, learners: &BTreeSet<u64>) {
        let role = if m.state == ServerState::Leader {
            "leader"
        } else if voters.contains(&self.id) {
            "voter"
        } else if learners.contains(&self.id) {
            "standby"
        } else {
            "non-member"
        };
        let membership = m.membership_config.membership();
        let leader =
            m.current_leader.and_then(|id| membership.get_node(&id)).map(|n| n.name.clone()).unwrap_or_default();
        let status = RaftStatus {
            role: role.to_owned(),
            term: m.current_term,
            commit_index: m.local_committed.map_or(0, |l| l.index),
            leader,
            stats: vec![
                ("state".into(), format!("{:?}", m.state)),
                ("voters".into(), voters.len().to_string()),
                ("standbys".into(), learners.len().to_string()),
                ("last_log_index".into(), m.last_log_index.unwrap_or(0).to_string()),
                ("last_applied".into(), m.last_applied.map_or(0, |l| l.index).to_string()),
            ],
        };
        let stats = &self.shared.stats;
        use std::sync::atomic::Ordering::Relaxed;
        stats.raft_term.store(m.current_term, Relaxed);
        stats.raft_voters.store(voters.len() as u64, Relaxed);
        stats.raft_non_voters.store(learners.len() as u64, Relaxed);
        stats.raft_state.store(
            match m.state {
                ServerState::Leader => 2,
                ServerState::Candidate => 1,
                _ => 0,
            },
            Relaxed,
        );
        *self.shared.raft_status.write().unwrap_or_else(|e| e.into_inner()) = Some(status);
    }
}
