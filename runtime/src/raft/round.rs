//! One round of the Raft service, every [`TICK`](super::service): publish
//! this node's status, bootstrap a fresh cluster, and while leading move the
//! configuration towards the seats the ranking wants. The leader's upkeep
//! between rounds (expiry, departed owners, the cluster id, the hand-over
//! on stop) is in `upkeep.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use openraft::{ChangeMembers, Raft, ServerState};
use tokio_util::sync::CancellationToken;
use wippy_lua_stdlib::RaftStatus;

use super::bootstrap::{Bootstrap, Decision};
use super::churn::Churn;
use super::plan::{Config as Seats, Liveness, Step, plan};
use super::roles::{Candidate, Seat, choose};
use super::service::{RaftOptions, TICK};
use super::state_machine::StateMachine;
use super::types::{RaftNode, TypeConfig, node_id};
use crate::shared::Shared;

/// A learner this close to the leader's last log index may be promoted.
const CAUGHT_UP: u64 = 64;

/// The service's state between ticks.
pub(super) struct Loop {
    pub(super) raft: Raft<TypeConfig, StateMachine>,
    pub(super) sm: StateMachine,
    pub(super) shared: Arc<Shared>,
    pub(super) opts: RaftOptions,
    pub(super) id: u64,
    pub(super) boot: Bootstrap,
    /// The candidates last seen, and since when, for the reconcile debounce.
    pub(super) view: BTreeSet<u64>,
    pub(super) view_since: Instant,
    pub(super) last_leader: Option<u64>,
    /// When the leader last proposed an expiry sweep.
    pub(super) last_sweep: Option<Instant>,
    /// When the leader last looked for records of departed nodes.
    pub(super) last_orphan_sweep: Option<Instant>,
    /// How long each ended owner has waited (see `orphans.rs`).
    pub(super) orphan_grace: super::orphans::Grace,
    pub(super) churn: Churn,
    /// Members of another Raft cluster already warned about.
    pub(super) foreign: BTreeSet<(String, String)>,
}

impl Loop {
    pub(super) async fn run(mut self, stop: CancellationToken) {
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

    /// Logs each live member found in another Raft cluster, once.
    fn warn_foreign(&mut self, ours: Option<&str>) {
        let now: BTreeSet<(String, String)> = self.shared.foreign_raft_members().into_iter().collect();
        for (node, theirs) in now.difference(&self.foreign) {
            tracing::warn!(
                %node, raft_cluster = %theirs, ours = ours.unwrap_or_default(),
                "raft: a member belongs to another Raft cluster; the two never merge (nodes started apart \
                 each bootstrap alone unless cluster.raft.bootstrap_expect names the initial size)"
            );
        }
        self.foreign = now;
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
        self.check_lock_lease(&m, &voters);
        self.warn_foreign(cluster.as_deref());
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
        // A lone voter is its own quorum.
        let quorum = voters.len() < 2
            || m.last_quorum_acked.as_ref().is_some_and(|t| openraft::Instant::elapsed(&**t) < self.opts.lock_lease);
        self.sweep_orphans(quorum).await;
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

    /// Tells this node's lock holders their locks are lost when the node
    /// has not been in contact with a Raft majority for the lock lease: as
    /// leader, no quorum acknowledged it; otherwise, no leader reached it.
    fn check_lock_lease(&self, m: &openraft::RaftMetrics<TypeConfig>, voters: &BTreeSet<u64>) {
        // A lone voter is its own majority.
        if voters.len() < 2 || self.shared.locks.is_empty() {
            return;
        }
        let since = if m.state == ServerState::Leader {
            m.last_quorum_acked.as_ref().map(|t| openraft::Instant::elapsed(&**t))
        } else {
            self.shared.raft_transport.last_leader_contact().map(|t| t.elapsed())
        };
        let lease = self.opts.lock_lease;
        if since.is_none_or(|s| s > lease) {
            let why = format!("no contact with a Raft majority for over {lease:?}");
            crate::lock::revoke_all(&self.shared, &why);
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
