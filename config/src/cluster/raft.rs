//! `cluster.raft:`: the bounded consensus core (voters, standbys, clients).

use serde::{Deserialize, Serialize};

use crate::Duration;

/// Whether a node may hold Raft state at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RaftRole {
    /// May become a voter or a standby; runs a replica when Raft is enabled.
    #[default]
    Server,
    /// Gossip only: never in the Raft configuration; writes are forwarded to a member.
    Client,
}

/// Where the cluster-wide name registry keeps its Raft state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryBackend {
    /// Names live in the shared replicated key-value state machine.
    #[default]
    Kv,
    /// A dedicated registry state machine (the older layout).
    Fsm,
}

/// The `cluster.raft:` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a mapping of raft settings")]
pub struct RaftConfig {
    /// Run Raft on this node (only matters for `role: server`).
    pub enabled: bool,
    /// `server` or `client`.
    pub role: RaftRole,
    /// May this node be picked as a voter? `false` keeps it a standby or client.
    /// Advertised in gossip; treated as `false` where Raft does not run.
    pub eligible: bool,
    /// Preference when filling voter slots: lower wins, ties go by node id.
    pub priority: u32,
    /// Cluster formation: 0 never bootstraps (only joins an existing cluster), 1 forms
    /// a one-voter cluster at once, N waits until N eligible nodes see each other and
    /// then they form the cluster together. Set the same N on every initial node. The
    /// N nodes all become voters, so N may not exceed `max_voters`.
    pub bootstrap_expect: usize,
    /// Voter slots: odd, 1..=5.
    pub max_voters: usize,
    /// Non-voting, fully replicated members kept warm to replace a lost voter; 0..=4.
    pub max_standbys: usize,
    /// Quiet period after a membership change before the leader recomputes voters.
    pub reconcile_debounce: Duration,
    /// Time budget for one reconcile pass.
    pub reconcile_timeout: Duration,
    /// A follower that hears nothing from the leader for this long starts an election.
    pub heartbeat_timeout: Duration,
    /// How long a candidate waits for votes; not shorter than `heartbeat_timeout`.
    pub election_timeout: Duration,
    /// Longest wait before the leader sends a heartbeat carrying a new commit index.
    pub commit_timeout: Duration,
    /// Log entries since the last snapshot that trigger a new snapshot.
    pub snapshot_threshold: u64,
    /// How often to check whether a snapshot is due.
    pub snapshot_interval: Duration,
    /// Snapshots kept on disk.
    pub snapshot_retain: u32,
    /// Log entries kept after a snapshot so slightly lagging followers can catch up
    /// without a full snapshot transfer.
    pub trailing_logs: u64,
    /// Most log entries sent in one append request.
    pub max_append_entries: u32,
    /// Where Raft logs and snapshots live. Unset means `<node.data_dir>/store`; Raft
    /// uses `<dir>/_sys/raft`. See [`crate::Config::raft_data_dir`].
    pub data_dir: Option<String>,
    /// Period of the probe that checks a leader is reachable before cluster-wide names
    /// are reported ready.
    pub leader_probe_interval: Duration,
    /// Consecutive failed leader probes tolerated before names are reported not ready.
    pub leader_probe_grace: u32,
    /// Where the name registry lives in Raft.
    pub registry_backend: RegistryBackend,
    /// How long tombstones of eventually consistent (gossiped) names are retained;
    /// 0 turns age-based expiry off.
    pub global_dissem_tombstone_retention: Duration,
}

impl RaftConfig {
    /// Largest accepted `max_voters`; the voter count is always odd.
    pub const MAX_VOTERS: usize = 5;
    /// Largest accepted `max_standbys`.
    pub const MAX_STANDBYS: usize = 4;
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            enabled: true,
            role: RaftRole::Server,
            eligible: true,
            priority: 100,
            bootstrap_expect: 1,
            max_voters: Self::MAX_VOTERS,
            max_standbys: Self::MAX_STANDBYS,
            reconcile_debounce: Duration::from_secs(2),
            reconcile_timeout: Duration::from_secs(2),
            heartbeat_timeout: Duration::from_secs(3),
            election_timeout: Duration::from_secs(3),
            commit_timeout: Duration::from_millis(500),
            snapshot_threshold: 8192,
            snapshot_interval: Duration::from_secs(120),
            snapshot_retain: 3,
            trailing_logs: 10240,
            max_append_entries: 16,
            data_dir: None,
            leader_probe_interval: Duration::from_secs(3),
            leader_probe_grace: 3,
            registry_backend: RegistryBackend::Kv,
            global_dissem_tombstone_retention: Duration::default(),
        }
    }
}
