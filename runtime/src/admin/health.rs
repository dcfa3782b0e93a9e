//! `/livez`, `/readyz` and `/metrics`.
//!
//! Both probes answer JSON with every check by name, so an operator (or
//! `wippy health`) sees which one failed and why, not just a status code.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use super::auth::static_guard;
use super::reply::ApiError;
use crate::shared::Shared;

/// The content type of `/metrics`: prometheus-client writes OpenMetrics text.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Renders named checks: 200 when all are `None` (passing), else 503.
fn verdict(checks: &[(&str, Option<String>)]) -> Response {
    let failing = checks.iter().any(|(_, c)| c.is_some());
    let map: Map<String, Value> = checks
        .iter()
        .map(|(k, c)| ((*k).to_owned(), Value::String(c.clone().unwrap_or_else(|| "ok".into()))))
        .collect();
    let status = if failing { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let body = json!({"status": if failing { "failing" } else { "ok" }, "checks": map});
    (status, Json(body)).into_response()
}

/// Liveness: the process answers. A clustered node whose gossip thread has
/// stopped is no longer a member and should be restarted, so it fails; so
/// does a node cut off past the isolation grace, or a Raft member no leader
/// has reached for too long. Never needs a token: orchestrators probe it
/// without credentials.
pub(super) async fn livez(State(state): State<Arc<AppState>>) -> Response {
    let shared = &state.shared;
    let clustered = shared.cluster.read().unwrap_or_else(|e| e.into_inner()).is_some();
    let gossip = if clustered && !shared.gossip_running.load(Ordering::SeqCst) {
        Some("gossip stopped".to_owned())
    } else {
        shared.gossip_health.lock().unwrap_or_else(|e| e.into_inner()).clone()
    };
    verdict(&[("gossip", gossip), ("raft", raft_liveness(shared))])
}

/// The "raft last-contact" check (see `raft/liveness.rs`).
fn raft_liveness(shared: &Shared) -> Option<String> {
    let (started, heartbeat) = (*shared.raft_liveness.lock().unwrap_or_else(|e| e.into_inner()))?;
    let role = shared.raft_status.read().unwrap_or_else(|e| e.into_inner()).as_ref()?.role.clone();
    let contact = shared.raft_transport.last_leader_contact();
    crate::raft::liveness::check(&role, started, contact, heartbeat, std::time::Instant::now())
}

/// Readiness: the node has started all its subsystems and is not stopping.
pub(super) async fn readyz(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !static_guard(&state, &headers) {
        return ApiError::unauthorized("this route needs the admin.token bearer token").into_response();
    }
    let shared = &state.shared;
    let started = (!shared.ready.load(Ordering::SeqCst)).then(|| "still starting".to_owned());
    let stopping = shared.stopping.load(Ordering::SeqCst).then(|| "shutting down".to_owned());
    verdict(&[("started", started), ("stopping", stopping)])
}

/// Prometheus scrape in OpenMetrics text.
pub(super) async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !static_guard(&state, &headers) {
        return ApiError::unauthorized("this route needs the admin.token bearer token").into_response();
    }
    match state.metrics.render(&state.shared) {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], body).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "admin: could not encode metrics");
            ApiError::internal("could not encode metrics").into_response()
        }
    }
}
