//! State every worker and the node's control threads share.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use wippy_lua_stdlib::{HostError, HostResult, Value};

use crate::app::Definition;
use crate::cluster::events::Subscribers;
use crate::cluster::mesh::outbound::Peers;
use crate::cluster::mesh::service::Spawner;
use crate::naming::Registry;
use crate::scheduler::envelope::{Envelope, ExitResult, SpawnOrder};
use crate::scheduler::mailroom::Mailroom;
use crate::scheduler::preempt::PreemptSlot;
use crate::stats::NodeStats;

/// Called once with the result of a process the node watches.
pub(crate) type SystemWatch = Box<dyn FnOnce(ExitResult) + Send + Sync>;

/// The shared half of one worker.
#[derive(Default)]
pub(crate) struct WorkerHandle {
    /// Cross-worker inbox.
    pub mailroom: Mailroom,
    /// What the preemption watchdog looks at.
    pub preempt: Arc<PreemptSlot>,
    /// Next PID sequence number for processes placed on this worker.
    pub seq: AtomicU64,
    /// Live processes on this worker (placement and metrics).
    pub live: AtomicUsize,
}

/// A mesh connection that its peer closed without a goodbye.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClosedPeer {
    /// The peer's node name.
    pub name: String,
    /// The peer's generation when the connection was made.
    pub generation: u64,
    /// When the connection was made.
    pub since: Instant,
}

/// How gossip currently judges a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MemberState {
    /// Answering probes.
    Alive,
    /// Missed a probe; declared dead unless it refutes in time.
    Suspect,
    /// Declared down after its suspicion window expired.
    Dead,
    /// Said goodbye before going down (a graceful stop).
    Left,
}

impl MemberState {
    /// Every state, in the order metrics list them.
    pub(crate) const ALL: [MemberState; 4] =
        [MemberState::Alive, MemberState::Suspect, MemberState::Dead, MemberState::Left];

    /// The label used in metrics and in `system.cluster.members()`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead => "dead",
            MemberState::Left => "left",
        }
    }

    /// Alive or suspect: still a member, still worth sending to.
    pub(crate) fn is_up(self) -> bool {
        matches!(self, MemberState::Alive | MemberState::Suspect)
    }
}

/// One member of the cluster as the gossip service last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MemberInfo {
    /// The member's node name.
    pub name: String,
    /// Its gossip address, `ip:port`.
    pub addr: String,
    /// Its internode mesh address.
    pub internode: std::net::SocketAddr,
    /// The failure domain it advertises.
    pub failure_domain: String,
    /// How gossip judges it now.
    pub state: MemberState,
    /// Whether this entry is this node.
    pub is_local: bool,
    /// The member's incarnation: start time in nanoseconds, plus rejoins.
    pub generation: u64,
    /// It may hold a Raft voter seat.
    pub raft_eligible: bool,
    /// Its Raft rank among eligible nodes, lower first.
    pub raft_priority: u32,
}

/// What a peer last said about its place in Raft.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerRaft {
    /// It belongs to a formed Raft cluster.
    pub member: bool,
    /// That cluster's id, once known.
    pub cluster: Option<String>,
}

/// Node-wide state.
pub(crate) struct Shared {
    /// This node's id: the node part of every PID.
    pub node_id: String,
    /// One handle per worker.
    pub workers: Vec<WorkerHandle>,
    /// Process definitions by id.
    pub defs: RwLock<HashMap<String, Arc<Definition>>>,
    /// Known `process.host` ids.
    pub hosts: RwLock<HashSet<String>>,
    /// Cluster-wide locks held by this node's processes.
    pub locks: crate::claims::Claims,
    /// CONSISTENT names registered for this node's processes.
    pub names: crate::claims::Claims,
    /// On a client node: the Raft-backed names as the members report them.
    pub followed_names: crate::naming::followed::FollowedNames,
    /// The client nodes that follow this member's name index.
    pub name_followers: Mutex<std::collections::BTreeSet<String>>,
    /// A clustered node without a Raft instance (it follows the members'
    /// names instead of keeping a replica).
    pub raft_client: AtomicBool,
    /// STRONG name registrations this node has acknowledged.
    pub strong: crate::naming::strong::Reservations,
    /// Declared replicated stores, by entry id.
    pub stores: RwLock<HashMap<String, crate::app::StoreDef>>,
    /// LOCAL names.
    pub registry: Registry,
    /// Exit callbacks of system-watched processes, by PID counter.
    pub watches: DashMap<u64, SystemWatch>,
    /// Set once shutdown has begun: workers kill what is left and stop.
    pub stopping: AtomicBool,
    /// Per-worker Lua heap limit in bytes.
    pub memory_limit: usize,
    /// Node start, the zero of `time.monotonic()`.
    pub epoch: Instant,
    /// The cluster as gossip sees it, this node first, then every member
    /// gossip still remembers (dead and departed ones for a while, so
    /// metrics can count them). `None` on a single node, so
    /// `system.cluster.*` keeps its single-node answers.
    pub cluster: RwLock<Option<Vec<MemberInfo>>>,
    /// Set once every subsystem has started; `/readyz` answers from it.
    pub ready: AtomicBool,
    /// True while the gossip thread runs, so `/livez` can fail a clustered
    /// node whose membership has silently died.
    pub gossip_running: Arc<AtomicBool>,
    /// Peers whose process closed its end of a mesh connection, with the
    /// generation the connection was made with; the gossip thread takes
    /// them as evidence that the process is gone (see `route.rs`).
    pub closed_peers: Mutex<Vec<ClosedPeer>>,
    /// Why gossip is unhealthy (isolated, flapping), `None` when it is fine.
    pub gossip_health: Mutex<Option<String>>,
    /// The gossip health score (0 is best), for `/metrics`.
    pub gossip_health_score: AtomicU64,
    /// Gossip datagrams dropped because they did not open (wrong key,
    /// garbage); counted by the gossip thread, read by `/metrics`.
    pub gossip_rejected: Arc<AtomicU64>,
    /// This node's Raft status as `system.raft.*` reports it; `None` where
    /// Raft does not run. Written by the Raft service.
    pub raft_status: RwLock<Option<wippy_lua_stdlib::RaftStatus>>,
    /// This node belongs to a formed Raft cluster (told to peers).
    pub raft_member: AtomicBool,
    /// The id of this node's Raft cluster, once known (told to peers).
    pub raft_cluster: RwLock<Option<String>>,
    /// What each peer last said about itself: whether it belongs to a
    /// formed Raft cluster (bootstrap waits for nobody that does).
    pub peer_status: Mutex<HashMap<String, PeerRaft>>,
    /// When the Raft service started and its heartbeat timeout, for the
    /// liveness check; `None` where Raft does not run.
    pub raft_liveness: Mutex<Option<(Instant, Duration)>>,
    /// Raft calls in flight between nodes, and the local Raft instance.
    pub raft_transport: crate::raft::transport::Transport,
    /// This node's Raft instance, where it runs one: client requests made
    /// here are served by it directly when it leads.
    pub raft_local: RwLock<Option<crate::raft::endpoint::LocalRaft>>,
    /// Who hears about membership changes.
    pub membership_events: Subscribers,
    /// Counters for `/metrics` kept outside the scheduler.
    pub stats: NodeStats,
    /// Outgoing queues of the peers we send to.
    pub peers: Peers,
    /// Process groups, EVENTUAL names and `store.kv.crdt` namespaces.
    pub replica: crate::replica::service::Replica,
    /// Identity, license, peer book and the replicated credential.
    pub access: crate::access::state::Access,
    /// Starts peer writers on the mesh thread; `None` without a mesh.
    pub mesh: Mutex<Option<Spawner>>,
    exit: Mutex<Option<i32>>,
    exit_cv: Condvar,
}

impl Shared {
    /// Builds the shared state for `workers` workers.
    pub(crate) fn new(node_id: String, workers: usize, memory_limit: usize) -> Shared {
        Shared {
            replica: crate::replica::service::Replica::new(&node_id),
            access: crate::access::state::Access::new(&node_id),
            node_id,
            workers: (0..workers).map(|_| WorkerHandle::default()).collect(),
            defs: RwLock::default(),
            hosts: RwLock::default(),
            stores: RwLock::default(),
            locks: Default::default(),
            strong: Default::default(),
            followed_names: Default::default(),
            name_followers: Default::default(),
            raft_client: AtomicBool::new(false),
            names: Default::default(),
            registry: Registry::default(),
            watches: DashMap::new(),
            stopping: AtomicBool::new(false),
            memory_limit,
            epoch: Instant::now(),
            cluster: RwLock::new(None),
            ready: AtomicBool::new(false),
            gossip_running: Arc::default(),
            gossip_rejected: Arc::default(),
            gossip_health: Mutex::new(None),
            closed_peers: Mutex::new(Vec::new()),
            gossip_health_score: AtomicU64::new(0),
            raft_transport: Default::default(),
            raft_local: RwLock::new(None),
            raft_member: AtomicBool::new(false),
            raft_cluster: RwLock::new(None),
            raft_liveness: Mutex::new(None),
            peer_status: Mutex::new(HashMap::new()),
            raft_status: RwLock::new(None),
            membership_events: Subscribers::default(),
            stats: NodeStats::default(),
            peers: Peers::default(),
            mesh: Mutex::new(None),
            exit: Mutex::new(None),
            exit_cv: Condvar::new(),
        }
    }

    /// Number of workers.
    pub(crate) fn n_workers(&self) -> usize {
        self.workers.len()
    }

    /// The worker owning PID counter `counter`.
    pub(crate) fn worker_of(&self, counter: u64) -> usize {
        (counter % self.workers.len() as u64) as usize
    }

    /// Allocates a PID on worker `w`.
    pub(crate) fn alloc_pid(&self, w: usize, host: &str) -> (u64, String) {
        let seq = self.workers[w].seq.fetch_add(1, Ordering::Relaxed) + 1;
        let counter = seq * self.workers.len() as u64 + w as u64;
        (counter, crate::pid::format_pid(&self.node_id, host, counter))
    }

    /// Checks that a definition and a host exist; returns the definition.
    pub(crate) fn check_spawn(&self, id: &str, host: &str) -> HostResult<Arc<Definition>> {
        let def = self
            .defs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| HostError::not_found(format!("process definition not found: {id}")))?;
        if !self.hosts.read().unwrap_or_else(|e| e.into_inner()).contains(host) {
            return Err(HostError::not_found(format!("host not found: {host}")));
        }
        Ok(def)
    }

    /// The worker with the fewest live processes.
    pub(crate) fn least_loaded(&self) -> usize {
        (0..self.workers.len()).min_by_key(|&w| self.workers[w].live.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Spawns a process from outside any worker (services, the CLI, tests).
    /// `watch`, when given, is called with the process's result.
    pub(crate) fn spawn_external(
        &self,
        id: &str,
        host: &str,
        args: Vec<Value>,
        watch: Option<SystemWatch>,
    ) -> HostResult<String> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(HostError::unavailable("node is shutting down"));
        }
        self.check_spawn(id, host)?;
        let w = self.least_loaded();
        // Count it now, not when the worker picks the order up, so that
        // spawns in quick succession spread over the workers.
        self.workers[w].live.fetch_add(1, Ordering::Relaxed);
        let (counter, pid) = self.alloc_pid(w, host);
        let system_watch = watch.is_some();
        if let Some(cb) = watch {
            self.watches.insert(counter, cb);
        }
        let order = SpawnOrder {
            counter,
            pid: pid.clone(),
            def: id.to_string(),
            parent: String::new(),
            flags: 0,
            args,
            system_watch,
        };
        self.post(w, Envelope::Spawn(Box::new(order)));
        Ok(pid)
    }

    /// Posts one envelope to worker `w`.
    pub(crate) fn post(&self, w: usize, env: Envelope) {
        self.workers[w].mailroom.post(&mut vec![env]);
    }

    /// Routes an envelope to the worker owning its target.
    pub(crate) fn route(&self, env: Envelope) {
        let w = self.worker_of(env.target());
        self.post(w, env);
    }

    /// The PID a name resolves to, most authoritative scope first: the
    /// Raft-backed names (CONSISTENT and STRONG, from this node's replica),
    /// then EVENTUAL names, then LOCAL ones.
    pub(crate) fn resolve_name(&self, name: &str) -> Option<String> {
        crate::naming::consistent::lookup(self, name)
            .or_else(|| self.replica.table().resolve(name).map(str::to_owned))
            .or_else(|| self.registry.lookup(name))
    }

    /// Asks the node to stop with `code` (first request wins).
    pub(crate) fn request_exit(&self, code: i32) {
        let mut e = self.exit.lock().unwrap_or_else(|e| e.into_inner());
        if e.is_none() {
            *e = Some(code);
        }
        self.exit_cv.notify_all();
    }

    /// Waits up to `timeout` (forever when `None`) for an exit request.
    pub(crate) fn wait_exit(&self, timeout: Option<Duration>) -> Option<i32> {
        let guard = self.exit.lock().unwrap_or_else(|e| e.into_inner());
        match timeout {
            None => *self.exit_cv.wait_while(guard, |e| e.is_none()).unwrap_or_else(|e| e.into_inner()),
            Some(t) => *self.exit_cv.wait_timeout_while(guard, t, |e| e.is_none()).unwrap_or_else(|e| e.into_inner()).0,
        }
    }

    /// The exit code requested so far, if any.
    pub(crate) fn exit_code(&self) -> Option<i32> {
        *self.exit.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Live processes on the whole node.
    pub(crate) fn live(&self) -> usize {
        self.workers.iter().map(|w| w.live.load(Ordering::Relaxed)).sum()
    }
}
