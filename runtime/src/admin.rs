//! The admin HTTP listener: `/livez`, `/readyz` and `/metrics`.
//!
//! It lives in the runtime rather than the binary because everything it
//! reports (live processes, the gossip view, dropped datagrams) sits in
//! [`Shared`], which is crate-private; and because [`crate::Node`] orders its
//! start (bound before any worker runs, so a taken port fails start-up) and
//! its stop (first, before services and workers go away).
//!
//! The server runs on its own thread with a current-thread tokio runtime:
//! a handful of health probes and scrapes a minute need no more, and it
//! keeps the Lua workers free of any async machinery.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use thiserror::Error;

use crate::cluster::mesh::frame::Class;
use crate::shared::{MemberState, Shared};

/// The content type of `/metrics`: prometheus-client writes OpenMetrics text.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long open connections get to finish once shutdown begins; a client
/// holding a connection open must not hold up the node's exit.
const DRAIN: Duration = Duration::from_secs(2);

/// Where and how the admin server listens (`admin.*`).
#[derive(Clone)]
pub struct AdminOptions {
    /// `ip:port` (or `host:port`); port 0 lets the OS pick one.
    pub address: String,
    /// When set, every route but `/livez` needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl std::fmt::Debug for AdminOptions {
    /// Never prints the token: options end up in debug logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminOptions")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why the admin server could not start.
#[derive(Debug, Error)]
pub enum AdminError {
    /// The listen address could not be bound; names the config key so the
    /// operator knows what to change.
    #[error("admin.address {address}: cannot listen: {error}")]
    Bind {
        /// The configured address.
        address: String,
        /// What the OS said (part of the message, not a separate cause, so
        /// a printed chain does not repeat it).
        error: std::io::Error,
    },
    /// The runtime or the server thread could not be created.
    #[error("could not start the admin server: {0}")]
    Start(std::io::Error),
}

/// A running admin server; [`AdminServer::stop`] ends it and joins its thread.
pub(crate) struct AdminServer {
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

/// What the handlers share.
struct AppState {
    shared: Arc<Shared>,
    token: Option<String>,
    metrics: Metrics,
}

/// The registered metrics; values are copied in from [`Shared`] at each
/// scrape, so the hot paths never touch them.
struct Metrics {
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
    fn new(shared: &Shared) -> Metrics {
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
    fn render(&self, shared: &Shared) -> Result<String, std::fmt::Error> {
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

impl AdminServer {
    /// Binds `opts.address` now (so a taken port fails the node's start) and
    /// serves on a new thread.
    pub(crate) fn start(opts: &AdminOptions, shared: Arc<Shared>) -> Result<AdminServer, AdminError> {
        let bind_err = |error| AdminError::Bind { address: opts.address.clone(), error };
        let listener = std::net::TcpListener::bind(opts.address.as_str()).map_err(bind_err)?;
        let bound = listener.local_addr().map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(AdminError::Start)?;
        let registry = Metrics::new(&shared);
        let state = Arc::new(AppState { shared, token: opts.token.clone(), metrics: registry });
        let router = Router::new()
            .route("/livez", get(livez))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(state);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let drain_rx = stop_rx.clone();
        let thread = std::thread::Builder::new()
            .name("wippy-admin".into())
            .spawn(move || serve(rt, listener, router, bound, stop_rx, drain_rx))
            .map_err(AdminError::Start)?;
        tracing::info!(addr = %bound, "admin listening");
        Ok(AdminServer { stop: Some(stop), thread: Some(thread) })
    }

    /// Stops accepting, gives open requests [`DRAIN`] to finish and joins.
    pub(crate) fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The server thread's body.
fn serve(
    rt: tokio::runtime::Runtime,
    listener: std::net::TcpListener,
    router: Router,
    bound: SocketAddr,
    mut stop_rx: tokio::sync::watch::Receiver<bool>,
    mut drain_rx: tokio::sync::watch::Receiver<bool>,
) {
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(addr = %bound, error = %e, "admin server could not start");
                return;
            }
        };
        let graceful = async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        };
        let deadline = async move {
            let _ = drain_rx.wait_for(|s| *s).await;
            tokio::time::sleep(DRAIN).await;
        };
        let server = axum::serve(listener, router).with_graceful_shutdown(graceful);
        tokio::select! {
            r = server => if let Err(e) = r {
                tracing::error!(addr = %bound, error = %e, "admin server failed");
            },
            () = deadline => tracing::debug!("admin server: drain deadline passed"),
        }
    });
}

/// Whether `headers` carry the configured bearer token (always, when none is set).
fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.token else { return true };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare every byte, so the time taken does not reveal the matching prefix.
    given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "unauthorized\n").into_response()
}

/// Liveness: the process answers. A clustered node whose gossip thread has
/// stopped is no longer a member and should be restarted, so it fails.
/// Never needs the token: orchestrators probe it without credentials.
async fn livez(State(state): State<Arc<AppState>>) -> Response {
    let clustered = state.shared.cluster.read().unwrap_or_else(|e| e.into_inner()).is_some();
    if clustered && !state.shared.gossip_running.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "gossip stopped\n").into_response();
    }
    if let Some(why) = state.shared.gossip_health.lock().unwrap_or_else(|e| e.into_inner()).clone() {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response();
    }
    if let Some(why) = raft_liveness(&state.shared) {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response();
    }
    (StatusCode::OK, "ok").into_response()
}

/// The "raft last-contact" check (see `raft/liveness.rs`).
fn raft_liveness(shared: &Shared) -> Option<String> {
    let (started, heartbeat) = (*shared.raft_liveness.lock().unwrap_or_else(|e| e.into_inner()))?;
    let role = shared.raft_status.read().unwrap_or_else(|e| e.into_inner()).as_ref()?.role.clone();
    let contact = shared.raft_transport.last_leader_contact();
    crate::raft::liveness::check(&role, started, contact, heartbeat, std::time::Instant::now())
}

/// Readiness: the node has started all its subsystems and is not stopping.
async fn readyz(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    if state.shared.ready.load(Ordering::SeqCst) && !state.shared.stopping.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// Prometheus scrape in OpenMetrics text.
async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    match state.metrics.render(&state.shared) {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], body).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "admin: could not encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
