//! The admin HTTP listener: health, metrics and the `/v1` operator API
//! (docs/admin-api.md).
//!
//! It lives in the runtime rather than the binary because everything it
//! reports and changes (the gossip view, the peer book, the credential)
//! sits in [`Shared`], which is crate-private; and because [`crate::Node`]
//! orders its start (bound before any worker runs, so a taken port fails
//! start-up) and its stop (first, before services and workers go away).
//!
//! The server runs on its own thread with a current-thread tokio runtime:
//! a handful of probes, scrapes and operator calls a minute need no more,
//! and it keeps the Lua workers free of any async machinery.
//!
//! - `health.rs`: `/livez`, `/readyz`, `/metrics`;
//! - `auth.rs`: bearer tokens, scopes and `/v1/oauth/token`;
//! - `peers.rs`: `/v1/peers`;
//! - `cluster.rs`: identity, license, bootstrap, status, sync, rotation and
//!   the node-to-node handshake;
//! - `reply.rs`: the JSON error shape every route shares.

mod auth;
mod cluster;
mod health;
mod metrics;
mod peers;
mod reply;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use thiserror::Error;

use self::metrics::Metrics;
use crate::shared::Shared;

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
    /// The static `admin.token`, when set.
    token: Option<String>,
    metrics: Metrics,
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
        let advertised = advertised_address(bound, &shared);
        shared.access.set_addresses(Some(advertised), None);
        let state = Arc::new(AppState { shared, token: opts.token.clone(), metrics: registry });
        let router = routes().with_state(state);
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

/// Every route; see docs/admin-api.md.
fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/oauth/token", post(auth::token))
        .route("/v1/cluster/identity", get(cluster::identity))
        .route("/v1/license", get(cluster::license))
        .route("/v1/bootstrap", post(cluster::bootstrap))
        .route("/v1/cluster/status", get(cluster::status))
        .route("/v1/cluster/sync", post(cluster::sync))
        .route("/v1/cluster/credential/rotate", post(cluster::rotate))
        .route("/v1/cluster/handshake", post(cluster::handshake))
        .route("/v1/peers", get(peers::list).post(peers::add))
        .route("/v1/peers/self", get(peers::get_self).put(peers::update_self).delete(peers::remove_self))
        .route("/v1/peers/{id}", get(peers::get).put(peers::update).delete(peers::delete))
        .fallback(|| async { reply::ApiError::not_found("no such route") })
}

/// The address other nodes and the CLI can reach this API at: the bound
/// one, with an unspecified IP (`0.0.0.0`) replaced by the gossip address's
/// IP, which is the one the cluster already reaches this node at.
fn advertised_address(bound: SocketAddr, shared: &Shared) -> String {
    if !bound.ip().is_unspecified() {
        return bound.to_string();
    }
    let gossip_ip = shared.access.local().gossip_address.and_then(|a| a.parse::<SocketAddr>().ok()).map(|a| a.ip());
    match gossip_ip {
        Some(ip) => SocketAddr::new(ip, bound.port()).to_string(),
        None => bound.to_string(),
    }
}
