//! [`Node`]: builds the subsystems in order and stops them in reverse.
//!
//! Start: shared state → mesh and gossip (when clustered; the mesh first,
//! since gossip advertises its port) → admin → workers → preemption
//! watchdog → services.
//! Shutdown phases, each logged: (0) the admin server stops; (1) services
//! get CANCEL and are terminated when the deadline passes; (2) gossip leaves
//! the cluster; (3) workers kill what is left and are joined; (4) the mesh
//! flushes and closes; (5) the watchdog stops.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::Receiver;
use wippy_lua_stdlib::{HostError, Value};

use crate::admin::{AdminError, AdminOptions, AdminServer};
use crate::app::App;
use crate::cluster::gossip::{ClusterOptions, Gossip, GossipError};
use crate::cluster::keys::KeySet;
use crate::cluster::mesh::service::{Mesh, MeshError, MeshOptions};
use crate::pid::Pid;
use crate::raft::service::{RaftOptions, RaftService, RaftStartError};
use crate::scheduler::envelope::{Envelope, ExitResult};
use crate::scheduler::preempt::Watchdog;
use crate::service::Supervisor;
use crate::shared::Shared;

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Node id (the node part of PIDs).
    pub node_id: String,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// Lua heap limit per worker, in bytes.
    pub memory_limit: usize,
    /// How long a process may run before it is preempted.
    pub time_slice: Duration,
    /// How long services get to stop after CANCEL.
    pub shutdown_timeout: Duration,
    /// Gossip membership; `None` runs a single node.
    pub cluster: Option<ClusterOptions>,
    /// The admin HTTP listener; `None` runs without one.
    pub admin: Option<AdminOptions>,
    /// The Raft core; `None` where it does not run (no cluster, a client
    /// node, `cluster.raft.enabled: false`).
    pub raft: Option<RaftOptions>,
    /// Where durable node state lives (`<dir>/_sys/...`); `None` runs
    /// without (durable kv.crdt stores then live in memory only).
    pub store_dir: Option<std::path::PathBuf>,
    /// Identity, license and credential settings.
    pub access: crate::access::AccessOptions,
    /// On a clustered node outside the Raft configuration (a client): how
    /// long its lock holders keep their locks without confirmed contact
    /// with a Raft majority. Members check their own lease in the Raft loop.
    pub client_lock_lease: Option<Duration>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            node_id: "local".into(),
            workers: 0,
            memory_limit: 1 << 30,
            time_slice: Duration::from_millis(5),
            shutdown_timeout: Duration::from_secs(10),
            cluster: None,
            admin: None,
            raft: None,
            store_dir: None,
            access: crate::access::AccessOptions::default(),
            client_lock_lease: None,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A thread could not be created.
    #[error("could not start a thread")]
    Thread(#[from] std::io::Error),
    /// The gossip service could not start (socket, secret).
    #[error("could not start gossip")]
    Gossip(#[from] GossipError),
    /// The internode mesh could not start (its port is taken).
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// The admin listener could not start (its address is taken).
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The Raft core could not start (its data directory).
    #[error(transparent)]
    Raft(#[from] RaftStartError),
    /// The node identity or license could not be loaded.
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
}

/// A running node.
pub struct Node {
    shared: Arc<Shared>,
    workers: Vec<std::thread::JoinHandle<()>>,
    watchdog: Option<Watchdog>,
    supervisor: Option<Supervisor>,
    gossip: Option<Gossip>,
    raft: Option<RaftService>,
    mesh: Option<Mesh>,
    admin: Option<AdminServer>,
    opts: NodeOptions,
}

impl Node {
    /// Starts workers and services for `app`.
    pub fn start(opts: NodeOptions, app: App) -> Result<Node, NodeError> {
        let n =
            if opts.workers == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { opts.workers };
        let shared = Arc::new(Shared::new(opts.node_id.clone(), n, opts.memory_limit));
        shared.raft_client.store(opts.cluster.is_some() && opts.raft.is_none(), Ordering::Relaxed);
        // A clustered node cannot run without its identity; a single node
        // only shows it in the admin API, so a data dir it cannot write
        // (a read-only home) costs it a temporary identity, not its start.
        if let Err(e) = shared.access.configure(&opts.access, crate::identity::unix_now()) {
            if opts.cluster.is_some() {
                return Err(e.into());
            }
            tracing::warn!(error = %e, "node identity unavailable; using a temporary one");
        }
        {
            let mut defs = shared.defs.write().unwrap_or_else(|e| e.into_inner());
            for d in app.definitions {
                defs.insert(d.id.clone(), Arc::new(d));
            }
            let mut hosts = shared.hosts.write().unwrap_or_else(|e| e.into_inner());
            hosts.extend(app.hosts);
            let mut stores = shared.stores.write().unwrap_or_else(|e| e.into_inner());
            let kv_dir = opts.store_dir.as_ref().map(|d| d.join("_sys").join("kvcrdt"));
            for s in app.stores.iter().filter(|s| s.backend == crate::app::StoreBackend::KvCrdt) {
                shared.replica.kv.declare(&s.namespace, s.durable, kv_dir.as_deref());
            }
            stores.extend(app.stores.into_iter().map(|s| (s.id.clone(), s)));
            let mut table = shared.replica.table();
            for scope in &app.pg_scopes {
                let limits =
                    crate::replica::table::Limits { max_groups: scope.max_groups, max_members: scope.max_members };
                table.declare(&scope.id, limits);
                shared.replica.shorten_interval(scope.anti_entropy);
            }
        }
        // Gossip first: a port that cannot be bound fails the start before
        // any process runs, and processes never see a half-built view.
        let (mesh, gossip) = match &opts.cluster {
            Some(c) => {
                let keys = KeySet::new(&c.secret, &c.accept_secrets, c.key_grace, std::time::Instant::now())
                    .map_err(|e| GossipError::Key(e.to_string()))?;
                let mesh_opts = MeshOptions { bind: c.internode_bind, port: c.internode_port, keys };
                let listener = Mesh::bind(&mesh_opts)?;
                let mesh = Mesh::start(listener, &mesh_opts, shared.clone())?;
                let mut gossip_opts = ClusterOptions { internode_port: mesh.port(), ..c.clone() };
                // Peers admitted earlier are seeds too, so a node added with
                // `peers add` finds its cluster again after a restart.
                for seed in shared.access.known_seeds() {
                    if !gossip_opts.join.contains(&seed) {
                        gossip_opts.join.push(seed);
                    }
                }
                // Groups, names and CRDT stores compare digests at least as
                // often as gossip does its full-state exchange.
                shared.replica.shorten_interval(c.push_pull_interval);
                if let Some(spawner) = shared.mesh.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    spawner.spawn(crate::replica::service::anti_entropy_loop(shared.clone()));
                    if let Some(lease) = opts.client_lock_lease {
                        spawner.spawn(crate::lock::client_lease(shared.clone(), lease));
                    }
                }
                (Some(mesh), Some(Gossip::start(&gossip_opts, shared.clone())?))
            }
            None => (None, None),
        };
        // After the mesh (its RPCs ride it) and gossip (bootstrap reads the
        // view); only on a clustered node.
        let raft = match (&opts.raft, &gossip) {
            (Some(r), Some(_)) => {
                // A node with admitted peers is joining them, as one with
                // `join_addrs` is: it never bootstraps a Raft core alone
                // (one whose Raft state was deleted joins its peers' core).
                let has_seeds = r.has_seeds || !shared.access.known_seeds().is_empty();
                Some(RaftService::start(&RaftOptions { has_seeds, ..r.clone() }, shared.clone())?)
            }
            _ => None,
        };
        // Bound before workers for the same reason: a taken admin port is a
        // configuration error to report, not something to run without.
        let admin = opts.admin.as_ref().map(|a| AdminServer::start(a, shared.clone())).transpose()?;
        let mut workers = Vec::with_capacity(n);
        for idx in 0..n {
            let s = shared.clone();
            workers.push(std::thread::Builder::new().name(format!("wippy-worker-{idx}")).spawn(move || {
                if let Err(e) = crate::scheduler::run_worker(idx, s.clone()) {
                    tracing::error!(worker = idx, error = %e, "worker failed to start");
                    s.request_exit(70);
                }
            })?);
        }
        let slots = shared.workers.iter().map(|w| w.preempt.clone()).collect();
        let watchdog = Watchdog::start(slots, opts.time_slice)?;
        let supervisor = Supervisor::start(shared.clone(), app.services)?;
        shared.ready.store(true, Ordering::SeqCst);
        tracing::info!(node = %opts.node_id, workers = n, "node started");
        Ok(Node {
            shared,
            workers,
            watchdog: Some(watchdog),
            supervisor: Some(supervisor),
            gossip,
            raft,
            mesh,
            admin,
            opts,
        })
    }

    /// This node's id.
    pub fn id(&self) -> &str {
        &self.shared.node_id
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.shared.n_workers()
    }

    /// Spawns a process from outside (no parent).
    pub fn spawn(&self, id: &str, host: &str, args: Vec<Value>) -> Result<String, HostError> {
        self.shared.spawn_external(id, host, args, None)
    }

    /// Spawns a process and returns a receiver for its result.
    pub fn spawn_watched(
        &self,
        id: &str,
        host: &str,
        args: Vec<Value>,
    ) -> Result<(String, Receiver<ExitResult>), HostError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let pid = self.shared.spawn_external(
            id,
            host,
            args,
            Some(Box::new(move |r| {
                let _ = tx.send(r);
            })),
        )?;
        Ok((pid, rx))
    }

    /// Sends a message from outside any process (`from` is empty).
    pub fn send(&self, dest: &str, topic: &str, payload: Value) -> Result<(), HostError> {
        let s = if Pid::looks_like(dest) {
            dest.to_string()
        } else {
            self.shared
                .registry
                .lookup(dest)
                .ok_or_else(|| HostError::not_found(format!("could not resolve: {dest}")))?
        };
        let pid = Pid::parse(&s).map_err(|e| HostError::invalid(e.to_string()))?;
        self.shared.route(Envelope::Message {
            to: pid.counter,
            to_pid: s,
            from: String::new(),
            topic: topic.to_string(),
            payload,
        });
        Ok(())
    }

    /// Looks up a LOCAL name.
    pub fn lookup(&self, name: &str) -> Option<String> {
        self.shared.registry.lookup(name)
    }

    /// Live processes.
    pub fn live(&self) -> usize {
        self.shared.live()
    }

    /// Service restarts so far.
    pub fn restarts(&self) -> u64 {
        self.supervisor.as_ref().map_or(0, |s| s.restarts())
    }

    /// Asks the node to stop (as `system.exit(code)` does).
    pub fn request_exit(&self, code: i32) {
        self.shared.request_exit(code);
    }

    /// Waits for an exit request.
    pub fn wait_exit(&self, timeout: Option<Duration>) -> Option<i32> {
        self.shared.wait_exit(timeout)
    }

    /// Stops the node in order and returns the exit code (0 unless requested).
    pub fn shutdown(mut self) -> i32 {
        tracing::info!("shutdown: stopping services");
        self.stop(self.opts.shutdown_timeout);
        tracing::info!("shutdown: done");
        self.shared.exit_code().unwrap_or(0)
    }

    /// The shutdown phases: services (CANCEL, then terminate after
    /// `deadline`), then workers (they kill what is left), then the watchdog.
    fn stop(&mut self, deadline: Duration) {
        self.shared.ready.store(false, Ordering::SeqCst);
        // First, so probes and scrapes never see a half-stopped node.
        if let Some(a) = self.admin.take() {
            tracing::info!("shutdown: stopping the admin server");
            a.stop();
        }
        if let Some(s) = self.supervisor.take() {
            s.stop(deadline);
        }
        if let Some(r) = self.raft.take() {
            tracing::info!("shutdown: stopping raft");
            r.stop();
        }
        // Leave while workers still run, so peers drop us before our
        // processes vanish rather than suspecting us for a second or two.
        if let Some(g) = self.gossip.take() {
            tracing::info!("shutdown: leaving the cluster");
            g.stop();
        }
        if !self.workers.is_empty() {
            tracing::info!(live = self.shared.live(), "shutdown: stopping workers");
            self.shared.stopping.store(true, Ordering::SeqCst);
            for w in &self.shared.workers {
                w.mailroom.wake_always();
            }
            for j in self.workers.drain(..) {
                let _ = j.join();
            }
        }
        // After the workers: nothing writes to the CRDT stores any more.
        self.shared.replica.kv.persist();
        // After the workers, so the exit signals of the processes they
        // killed still get a chance to leave.
        if let Some(m) = self.mesh.take() {
            tracing::info!("shutdown: closing the internode mesh");
            m.stop();
        }
        if let Some(w) = self.watchdog.take() {
            w.stop();
        }
    }
}

impl Drop for Node {
    /// A node dropped without `shutdown` still stops every thread it owns,
    /// without giving services time to finish.
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}

/// A cloneable way to ask a node to stop (signal handlers, watchers).
#[derive(Clone)]
pub struct ExitHandle(Arc<Shared>);

impl ExitHandle {
    /// Asks the node to stop with `code` (the first request wins).
    pub fn request_exit(&self, code: i32) {
        self.0.request_exit(code);
    }
}

impl Node {
    /// A handle that can request an exit from any thread.
    pub fn exit_handle(&self) -> ExitHandle {
        ExitHandle(self.shared.clone())
    }
}
