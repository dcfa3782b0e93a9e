//! The Prometheus registry behind `/metrics`.
//!
//! Values are copied in from [`Shared`] at each scrape, so the hot paths
//! only bump atomics and never touch the registry.

use std::sync::atomic::Ordering;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::cluster::mesh::frame::Class;
use crate::shared::{MemberState, Shared};

/// The registered metrics; values are copied in from [`Shared`] at each
/// scrape, so the hot paths never touch them.
pub(super) struct Metrics {
    registry: Registry,
    processes: Gauge,
    members: Family<Vec<(String, String)>, Gauge>,
    dropped: Counter,
    health: Gauge,
    raft: [Gauge; 4],
    leader_changes: Counter,
    churn: Counter,
    mesh: [Family<Vec<(String, String)>, Counter>; 5],
    handshake_failures: Counter,
    /// `pg_groups`, `pg_local_members`, `eventual_names`, `pg_watchers`.
    replica: [Gauge; 4],
    revoked: Counter,
    kv_crdt: Family<Vec<(String, String)>, Gauge>,
}

/// The per-class mesh counters, in the order of `Metrics::mesh`.
const MESH_COUNTERS: [(&str, &str); 5] = [
    ("mesh_frames_sent", "Frames written to other nodes, by traffic class"),
    ("mesh_bytes_sent", "Payload bytes written to other nodes, by traffic class"),
    ("mesh_frames_received", "Frames read from other nodes, by traffic class"),
    ("mesh_bytes_received", "Payload bytes read from other nodes, by traffic class"),
    ("mesh_dropped", "Items dropped (full queue, peer down, failed write), by traffic class"),
];

impl Metrics {
    pub(super) fn new(shared: &Shared) -> Metrics {
        let mut registry = Registry::default();
        let processes = Gauge::default();
        let members = Family::<Vec<(String, String)>, Gauge>::default();
        let dropped = Counter::default();
        let health = Gauge::default();
        let raft: [Gauge; 4] = Default::default();
        let leader_changes = Counter::default();
        let churn = Counter::default();
        registry.register("wippy_processes", "Live processes on this node", processes.clone());
        registry.register("gossip_members", "Cluster members this node sees, itself included", members.clone());
        registry.register("gossip_packets_dropped", "Gossip datagrams that failed to open", dropped.clone());
        registry.register(
            "gossip_convergence_seconds",
            "Time from a node's start until this node learned of it",
            shared.stats.convergence.clone(),
        );
        let mesh: [Family<Vec<(String, String)>, Counter>; 5] = Default::default();
        for ((name, help), family) in MESH_COUNTERS.iter().zip(&mesh) {
            registry.register(*name, *help, family.clone());
        }
        registry.register(
            "gossip_health_score",
            "Gossip health, 0 is best: isolated past the grace, declared down recently",
            health.clone(),
        );
        for (name, help, gauge) in [
            ("raft_state", "This node's Raft state: 0 follower or not running, 1 candidate, 2 leader", &raft[0]),
            ("raft_term", "The current Raft term", &raft[1]),
            ("raft_voters", "Voters in the Raft configuration", &raft[2]),
            ("raft_non_voters", "Standbys (non-voting learners) in the Raft configuration", &raft[3]),
        ] {
            registry.register(name, help, gauge.clone());
        }
        registry.register("raft_leader_changes", "Leader changes this node has seen", leader_changes.clone());
        registry.register(
            "raft_voter_churn_burst",
            "Bursts of voter changes (three within a minute) this node made as leader",
            churn.clone(),
        );
        let handshake_failures = Counter::default();
        registry.register(
            "mesh_handshake_failures",
            "Internode connections refused in the handshake (wrong secret, wrong peer)",
            handshake_failures.clone(),
        );
        let replica: [Gauge; 4] = Default::default();
        for (name, help, gauge) in [
            ("pg_groups", "Process groups with members anywhere in the cluster, over all scopes", &replica[0]),
            ("pg_local_members", "Group memberships of this node's processes, one per join", &replica[1]),
            ("eventual_names", "EVENTUAL names bound anywhere in the cluster, as this node sees them", &replica[2]),
            ("pg_watchers", "Group subscriptions (monitor, events) of this node's processes", &replica[3]),
        ] {
            registry.register(name, help, gauge.clone());
        }
        let revoked = Counter::default();
        registry.register(
            "eventual_names_revoked",
            "EVENTUAL registrations of this node revoked by an earlier one on another node",
            revoked.clone(),
        );
        let kv_crdt = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register("kv_crdt_entries", "Entries of a kv.crdt namespace, deletes included", kv_crdt.clone());
        Metrics {
            registry,
            processes,
            members,
            dropped,
            health,
            raft,
            leader_changes,
            churn,
            mesh,
            handshake_failures,
            replica,
            revoked,
            kv_crdt,
        }
    }

    /// Copies the current values in and renders the registry.
    pub(super) fn render(&self, shared: &Shared) -> Result<String, std::fmt::Error> {
        self.processes.set(i64::try_from(shared.live()).unwrap_or(i64::MAX));
        let mut counts = [0i64; 4];
        if let Some(view) = shared.cluster.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            for m in view {
                counts[m.state as usize] += 1;
            }
        }
        for state in MemberState::ALL {
            self.members
                .get_or_create(&vec![("state".to_owned(), state.as_str().to_owned())])
                .set(counts[state as usize]);
        }
        for class in Class::ALL {
            let c = shared.stats.class(class);
            let values = [&c.frames_sent, &c.bytes_sent, &c.frames_received, &c.bytes_received, &c.dropped];
            for (family, value) in self.mesh.iter().zip(values) {
                let label = vec![("class".to_owned(), class.label().to_owned())];
                family.get_or_create(&label).inner().store(value.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
        let s = &shared.stats;
        for (gauge, value) in self.raft.iter().zip([&s.raft_state, &s.raft_term, &s.raft_voters, &s.raft_non_voters]) {
            gauge.set(i64::try_from(value.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        }
        self.leader_changes.inner().store(s.raft_leader_changes.load(Ordering::Relaxed), Ordering::Relaxed);
        self.churn.inner().store(s.raft_churn_bursts.load(Ordering::Relaxed), Ordering::Relaxed);
        let score = shared.gossip_health_score.load(Ordering::Relaxed);
        self.health.set(i64::try_from(score).unwrap_or(i64::MAX));
        self.handshake_failures
            .inner()
            .store(shared.stats.handshake_failures.load(Ordering::Relaxed), Ordering::Relaxed);
        let figures = shared.replica.table().figures();
        for (gauge, value) in self.replica.iter().zip(figures) {
            gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        self.revoked.inner().store(shared.replica.revoked.load(Ordering::Relaxed), Ordering::Relaxed);
        for (ns, n) in shared.replica.kv.sizes() {
            self.kv_crdt.get_or_create(&vec![("namespace".to_owned(), ns)]).set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        // The gossip thread owns the true count; the counter mirrors it.
        self.dropped.inner().store(shared.gossip_rejected.load(Ordering::Relaxed), Ordering::Relaxed);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
