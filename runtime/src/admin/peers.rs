//! `/v1/peers`: the peer book joined with the gossip view.
//!
//! A peer's `status` is the book's (active, removed, deactivated, or
//! unadmitted for a member gossip knows but no handshake admitted yet);
//! its `state` is what gossip says right now. Adding a peer runs the
//! identity exchange with the other node's API and then joins its gossip.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::require;
use super::reply::{ApiError, ApiResult, ok, parse_json};
use crate::access::dial::{self, DialError, HandshakeRequest};
use crate::access::state::Joining;
use crate::identity::admission::{self, Binding};
use crate::identity::peers::{PeerRecord, PeerState};
use crate::identity::token::{PEERS_READ, PEERS_WRITE};
use crate::identity::{b64, unix_now};
use crate::shared::{MemberState, Shared};

/// How long a node that removed itself waits before it stops, so the
/// answer and its deactivation reach the others first.
const LEAVE_DELAY: std::time::Duration = std::time::Duration::from_millis(1500);

/// A gossip state as the API names it (operators say "down", not "dead").
pub(super) fn state_label(state: MemberState) -> &'static str {
    match state {
        MemberState::Dead => "down",
        other => other.as_str(),
    }
}

/// What gossip says about node `node` now.
fn gossip_state(shared: &Shared, node: &str) -> &'static str {
    let view = shared.cluster.read().unwrap_or_else(|e| e.into_inner());
    view.as_ref().and_then(|v| v.iter().find(|m| m.name == node)).map_or("unknown", |m| state_label(m.state))
}

/// A book record as the API shows it.
fn peer_json(shared: &Shared, r: &PeerRecord) -> Value {
    let local = r.node == shared.node_id;
    let (api, gossip) = if local {
        let me = shared.access.local();
        (me.api_address, me.gossip_address)
    } else {
        (r.api_address.clone(), r.gossip_address.clone())
    };
    json!({
        "id": r.peer_id,
        "node": r.node,
        "name": r.name,
        "state": if local { "alive" } else { gossip_state(shared, &r.node) },
        "status": r.state.as_str(),
        "local": local,
        "api_address": api,
        "gossip_address": gossip,
        "license_id": r.license_id,
        "public_key": r.public_key,
        "added_at": r.added_at,
    })
}

/// The record for `id` (`self` is this node).
fn find(shared: &Shared, id: &str) -> Result<PeerRecord, ApiError> {
    let key = shared.access.key();
    let id = if id == "self" { key.peer_id() } else { id };
    shared
        .access
        .book()
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "peer_not_found", format!("no peer with id {id}")))
}

/// `GET /v1/peers`.
pub(super) async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    require(&state, &headers, PEERS_READ)?;
    let shared = &state.shared;
    let records: Vec<PeerRecord> = shared.access.book().all().cloned().collect();
    let mut peers: Vec<Value> = records.iter().map(|r| peer_json(shared, r)).collect();
    // Members gossip knows that no handshake admitted (yet): shown so an
    // operator sees a node that is refused, not just its absence.
    let view = shared.cluster.read().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default();
    for m in view.iter().filter(|m| !m.is_local && !records.iter().any(|r| r.node == m.name)) {
        peers.push(json!({
            "id": null, "node": m.name, "name": null, "state": gossip_state(shared, &m.name),
            "status": "unadmitted", "local": false, "api_address": null, "gossip_address": m.addr,
            "license_id": null, "public_key": null, "added_at": null,
        }));
    }
    ok(json!({ "peers": peers }))
}

/// `GET /v1/peers/{id}`.
pub(super) async fn get(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    require(&state, &headers, PEERS_READ)?;
    ok(peer_json(&state.shared, &find(&state.shared, &id)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    name: Option<String>,
}

/// `GET /v1/peers/self`.
pub(super) async fn get_self(state: State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    get(state, headers, Path("self".to_owned())).await
}

/// `PUT /v1/peers/self`.
pub(super) async fn update_self(state: State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    update(state, headers, Path("self".to_owned()), body).await
}

/// `PUT /v1/peers/{id}`: the operator's label, local to this node.
pub(super) async fn update(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    require(&state, &headers, PEERS_WRITE)?;
    let Update { name } = parse_json(&body)?;
    if name.as_ref().is_some_and(|n| n.trim().is_empty() || n.len() > 128) {
        return Err(ApiError::bad_request("name must be 1 to 128 characters (or null to clear it)"));
    }
    let record = find(&state.shared, &id)?;
    let updated = state.shared.access.book().rename(&record.peer_id, name);
    ok(peer_json(&state.shared, &updated.unwrap_or(record)))
}

/// `DELETE /v1/peers/{id}`: refuse the peer on this node from now on.
pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    require(&state, &headers, PEERS_WRITE)?;
    let shared = &state.shared;
    let record = find(shared, &id)?;
    if record.peer_id == shared.access.key().peer_id() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "cannot_delete_local_peer",
            "cannot delete local peer, use 'peers remove-self' instead",
        ));
    }
    // Its connections into this node close and its next ones are refused;
    // this node stops sending to it.
    let removed = shared.access.remove_peer(&record.peer_id, unix_now());
    shared.peers.remove(&record.node);
    tracing::info!(peer = %record.node, peer_id = %record.peer_id, "peer removed by an operator");
    ok(peer_json(shared, &removed.unwrap_or(record)))
}

/// `DELETE /v1/peers/self`: sign a deactivation, tell every peer, leave.
pub(super) async fn remove_self(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    require(&state, &headers, PEERS_WRITE)?;
    let shared = state.shared.clone();
    let now = unix_now();
    let d = shared.access.deactivate_self(now).map_err(|e| ApiError::internal(e.to_string()))?;
    let notified = shared.broadcast_access();
    tracing::warn!(notified, "this node removed itself from the cluster; shutting down");
    let leaving = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(LEAVE_DELAY).await;
        leaving.request_exit(0);
    });
    let peer_id = d.verified_peer().unwrap_or_default();
    ok(json!({"peer_id": peer_id, "deactivated_at": now, "notified": notified}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Add {
    address: String,
}

/// `POST /v1/peers`: exchange identities with the node whose admin API is
/// at `address`, record it, and join its gossip.
pub(super) async fn add(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    require(&state, &headers, PEERS_WRITE)?;
    let Add { address } = parse_json(&body)?;
    let address = address.trim().trim_start_matches("http://").trim_end_matches('/').to_owned();
    if address.is_empty() {
        return Err(ApiError::bad_request("address is empty; give the other node's admin API as host:port"));
    }
    let shared = &state.shared;
    let challenge: [u8; 32] = rand::random();
    let request = HandshakeRequest {
        challenge: b64(&challenge),
        hello: shared.access.hello(Binding::Challenge(&challenge)),
        credential: shared.access.credential(),
    };
    let answer = dial::exchange(&address, &request).await.map_err(|e| match e {
        DialError::Refused => ApiError::new(StatusCode::BAD_GATEWAY, "connection_refused", e.to_string()),
        DialError::Timeout => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "connection_timeout", e.to_string()),
        DialError::Remote { code, message, .. } => {
            let status = if code == "peer_exists" { StatusCode::CONFLICT } else { StatusCode::FORBIDDEN };
            ApiError::new(status, known_code(&code), message)
        }
        DialError::Other(_) => ApiError::new(StatusCode::BAD_GATEWAY, "handshake_failed", e.to_string()),
    })?;
    let theirs = answer.hello;
    let peer_id = theirs.peer_id().ok_or_else(|| ApiError::refused(admission::Refusal::InvalidSignature))?;
    if peer_id == shared.access.key().peer_id() {
        return Err(ApiError::bad_request(format!("{address} is this node's own API")));
    }
    let exists = shared.access.book().get(&peer_id).is_some_and(|r| r.state == PeerState::Active)
        || matches!(gossip_state(shared, &theirs.node), "alive" | "suspect");
    if exists {
        return Err(ApiError::new(StatusCode::CONFLICT, "peer_exists", "peer already exists in cluster"));
    }
    let joining = Joining { api_address: Some(address.clone()), credential: None };
    shared
        .access
        .admit_with(&theirs, Binding::Challenge(&challenge), unix_now(), joining)
        .map_err(ApiError::refused)?;
    if let Some(gossip) = theirs.gossip_address.as_deref().and_then(|a| a.parse().ok()) {
        shared.access.request_join(gossip);
    }
    tracing::info!(peer = %theirs.node, %peer_id, %address, "peer added by an operator");
    let record = find(shared, &peer_id)?;
    Ok((StatusCode::CREATED, Json(peer_json(shared, &record))).into_response())
}

/// The remote node's error code as one of the static strings [`ApiError`]
/// holds: a refusal's, or the two other answers `peers add` expects; any
/// other is reported as a generic handshake failure.
fn known_code(code: &str) -> &'static str {
    admission::Refusal::ALL
        .map(admission::Refusal::code)
        .into_iter()
        .chain(["peer_exists", "not_clustered"])
        .find(|k| *k == code)
        .unwrap_or("handshake_failed")
}
