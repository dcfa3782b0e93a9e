//! The leader's upkeep beside reconciling: keys whose lifetime ended,
//! records of departed owners, the cluster's id, and handing leadership
//! over before a graceful stop.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use openraft::ServerState;
use sha2::Digest;

use super::orphans::{Seen, Verdict, verdict};
use super::round::Loop;
use super::state_machine::wall_ms;
use super::types::{Command, Cond};

/// Where the replicated state keeps the cluster's id (outside the `kv/`
/// space of the stores).
const CLUSTER_KEY: &str = "_sys/cluster";
/// How often the leader sweeps keys whose lifetime has ended (reads hide
/// them from the moment they end; the sweep only frees the space) and
/// looks for records of departed owners.
const EXPIRY_SWEEP: Duration = Duration::from_secs(1);

/// The owner of records tied to one incarnation of a node.
pub(crate) fn owner_id(node: &str, generation: u64) -> String {
    format!("{node}#{generation}")
}

impl Loop {
    /// On a graceful stop of the leader: hands leadership to the most
    /// caught-up voter and waits (up to one heartbeat timeout) until it has
    /// it, so the cluster goes on at once instead of waiting out an
    /// election timeout.
    pub(super) async fn hand_over(&self) {
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

    /// Removes records whose owner (a node incarnation, see [`owner_id`])
    /// gossip shows has ended (`orphans.rs`): locks and names of a node that
    /// died or left, or of a previous life of a restarted or rejoined node.
    /// At most once per [`EXPIRY_SWEEP`], and a bounded batch each time.
    /// `quorum` says whether this leader is in contact with a quorum now
    /// (see [`Grace`]).
    pub(super) async fn sweep_orphans(&mut self, quorum: bool) {
        let now = Instant::now();
        self.orphan_grace.contact(quorum, now);
        if self.last_orphan_sweep.is_some_and(|t| t.elapsed() < EXPIRY_SWEEP) {
            return;
        }
        self.last_orphan_sweep = Some(now);
        let view: Vec<(String, u64, bool)> = {
            let view = self.shared.cluster.read().unwrap_or_else(|e| e.into_inner());
            view.iter().flatten().map(|m| (m.name.clone(), m.generation, m.state.is_up())).collect()
        };
        let seen: Vec<Seen<'_>> = view.iter().map(|(n, g, up)| (n.as_str(), *g, *up)).collect();
        let orphans = match self.sm.orphans(|owner| verdict(owner, &seen) != Verdict::Live, 256) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "raft: cannot list records of departed nodes");
                return;
            }
        };
        let owners: Vec<&str> = orphans.iter().map(|(o, ..)| o.as_str()).collect();
        self.orphan_grace.keep_only(&owners);
        // Ended incarnations wait twice the detection time, with a quorum.
        let grace = self.opts.lock_lease * 4;
        let ready: Vec<(String, u64)> = orphans
            .iter()
            .filter(|(owner, ..)| self.orphan_grace.ready(owner, verdict(owner, &seen), now, grace))
            .map(|(_, key, version)| (key.clone(), *version))
            .collect();
        for (key, version) in ready {
            let cmd = Command::Delete { key: key.clone(), cond: Cond::Version(version), now_ms: wall_ms() };
            match tokio::time::timeout(EXPIRY_SWEEP, self.raft.client_write(cmd)).await {
                Ok(Ok(_)) => tracing::info!(%key, "raft: removed a record of a node that left"),
                _ => return,
            }
        }
    }

    /// This Raft cluster's id as the local replica has it.
    pub(super) fn cluster_id(&self) -> Option<String> {
        let record = self.sm.entry(CLUSTER_KEY, 0).ok().flatten()?;
        String::from_utf8(record.value.0).ok()
    }

    /// Gives a newly formed cluster its id: written once, by whichever
    /// leader gets there first (the put only applies to an absent key).
    pub(super) async fn name_cluster(&self) {
        let seed = format!("{}/{}/{:?}", self.shared.node_id, std::process::id(), std::time::SystemTime::now());
        let id: String = sha2::Sha256::digest(seed.as_bytes())[..8].iter().map(|b| format!("{b:02x}")).collect();
        let cmd = Command::Put {
            key: CLUSTER_KEY.to_owned(),
            value: id.into_bytes(),
            cond: Cond::Absent,
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
    pub(super) async fn expire(&mut self) {
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
}
