//! `/v1/cluster/*`, `/v1/license` and `/v1/bootstrap`: who this node is,
//! the license it holds, and the cluster-wide operations (sync, credential
//! rotation), plus the node-to-node half of `peers add`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::AppState;
use super::auth::require;
use super::reply::{ApiError, ApiResult, ok, parse_json};
use crate::access::AccessError;
use crate::access::dial::{HandshakeRequest, HandshakeResponse};
use crate::access::state::Joining;
use crate::identity::admission::Binding;
use crate::identity::license::License;
use crate::identity::token::{CLUSTER_ADMIN, PEERS_READ};
use crate::identity::{unb64, unix_now};
use crate::shared::{MemberState, Shared};

fn clustered(shared: &Shared) -> Result<(), ApiError> {
    let on = shared.cluster.read().unwrap_or_else(|e| e.into_inner()).is_some();
    if on { Ok(()) } else { Err(ApiError::not_clustered()) }
}

fn identity_json(shared: &Shared) -> Value {
    let me = shared.access.local();
    json!({
        "peer_id": me.key.peer_id(),
        "public_key": me.key.public_key_b64(),
        "node": me.node,
        "license_id": me.license.as_ref().map(|l| l.license_id.clone()),
        "cluster_id": me.license.as_ref().map(|l| l.cluster_id.clone()),
        "api_address": me.api_address,
        "gossip_address": me.gossip_address,
    })
}

fn license_json(shared: &Shared, l: &License) -> Value {
    let in_use = shared.access.book().active_others(&shared.node_id) + 1;
    json!({
        "license_id": l.license_id,
        "cluster_id": l.cluster_id,
        "max_nodes": l.max_nodes,
        "issued_at": l.issued_at,
        "expires_at": l.expires_at,
        "issuer_public_key": l.issuer_public_key,
        "nodes_in_use": in_use,
        "status": if l.check_current(unix_now()).is_ok() { "valid" } else { "expired" },
    })
}

/// `GET /v1/cluster/identity`: public, so an operator can compare nodes
/// before adding one.
pub(super) async fn identity(State(state): State<Arc<AppState>>) -> ApiResult {
    ok(identity_json(&state.shared))
}

/// `GET /v1/license`: public too; the license is not a secret once issued
/// (admission also needs the issuer's signature and a node key).
pub(super) async fn license(State(state): State<Arc<AppState>>) -> ApiResult {
    let l = state.shared.access.license().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "no_license", "no license installed: run `wippy bootstrap`")
    })?;
    ok(license_json(&state.shared, &l))
}

/// `POST /v1/bootstrap`: install a license. Open until a license is
/// installed (a fresh node has no credential to check yet); after that it
/// needs `cluster.admin`.
pub(super) async fn bootstrap(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let shared = &state.shared;
    if shared.access.license().is_some() {
        require(&state, &headers, CLUSTER_ADMIN)?;
    }
    let doc: Value = parse_json(&body)?;
    let (license, name) = match doc.get("license") {
        Some(l) => (l.clone(), doc.get("name").and_then(Value::as_str).map(str::to_owned)),
        None => (doc, None),
    };
    let license = License::parse(&license.to_string())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_license", e.to_string()))?;
    let created = shared.access.install_license(license.clone(), unix_now()).map_err(|e| match e {
        AccessError::AlreadyBootstrapped(_) => {
            ApiError::new(StatusCode::CONFLICT, "already_bootstrapped", e.to_string())
        }
        AccessError::License(_) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_license", e.to_string()),
        other => ApiError::internal(other.to_string()),
    })?;
    let key = shared.access.key();
    if let Some(name) = name.filter(|n| !n.trim().is_empty()) {
        shared.access.book().rename(key.peer_id(), Some(name));
    }
    if created.is_some() {
        shared.broadcast_access();
    }
    let credential = created.map(|(client_id, secret)| json!({"client_id": client_id, "client_secret": secret}));
    ok(json!({
        "peer_id": key.peer_id(),
        "license_id": license.license_id,
        "cluster_id": license.cluster_id,
        "credential": credential,
    }))
}

/// `GET /v1/cluster/status`.
pub(super) async fn status(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    require(&state, &headers, PEERS_READ)?;
    let shared = &state.shared;
    let mut counts = [0u64; 4];
    let view = shared.cluster.read().unwrap_or_else(|e| e.into_inner()).clone();
    for m in view.iter().flatten() {
        counts[m.state as usize] += 1;
    }
    let members: serde_json::Map<String, Value> = MemberState::ALL
        .iter()
        .map(|s| (super::peers::state_label(*s).to_owned(), json!(counts[*s as usize])))
        .collect();
    let raft = shared.raft_status.read().unwrap_or_else(|e| e.into_inner()).clone().map(|r| {
        json!({
            "role": r.role, "term": r.term, "leader": r.leader, "commit_index": r.commit_index,
            "voters": shared.stats.raft_voters.load(Ordering::Relaxed),
            "standbys": shared.stats.raft_non_voters.load(Ordering::Relaxed),
            "cluster_id": shared.raft_cluster.read().unwrap_or_else(|e| e.into_inner()).clone(),
            "foreign_members": shared.foreign_raft_members().into_iter()
                .map(|(node, id)| json!({"node": node, "raft_cluster": id}))
                .collect::<Vec<_>>(),
        })
    });
    let credential = shared.access.credential().map(|c| {
        json!({
            "client_id": c.client_id, "generation": c.generation, "created_at": c.created_at,
            "previous_valid_until": c.previous.map(|p| p.valid_until),
        })
    });
    ok(json!({
        "identity": identity_json(shared),
        "clustered": view.is_some(),
        "members": members,
        "raft": raft,
        "license": shared.access.license().map(|l| license_json(shared, &l)),
        "credential": credential,
    }))
}

/// `POST /v1/cluster/sync`: one anti-entropy round now: this node's groups,
/// names, stores and access state go to every live peer.
pub(super) async fn sync(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    require(&state, &headers, CLUSTER_ADMIN)?;
    clustered(&state.shared)?;
    let shared = state.shared.clone();
    // Persisting CRDT snapshots touches the disk: off the server thread.
    let peers = tokio::task::spawn_blocking(move || {
        shared.anti_entropy();
        shared.live_peers().len()
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    ok(json!({ "peers": peers }))
}

/// `POST /v1/cluster/credential/rotate`.
pub(super) async fn rotate(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    require(&state, &headers, CLUSTER_ADMIN)?;
    let shared = &state.shared;
    let (cred, secret) = shared.access.rotate(unix_now()).map_err(|e| match e {
        AccessError::NoCredential => ApiError::new(StatusCode::CONFLICT, "no_credential", e.to_string()),
        other => ApiError::internal(other.to_string()),
    })?;
    let peers = shared.broadcast_access();
    ok(json!({
        "client_id": cred.client_id,
        "client_secret": secret,
        "generation": cred.generation,
        "previous_valid_until": cred.previous.map(|p| p.valid_until),
        "peers_notified": peers,
    }))
}

/// `POST /v1/cluster/handshake`: the called side of `peers add`. Checks the
/// caller's hello, records it, answers with this node's hello bound to the
/// same challenge.
pub(super) async fn handshake(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let shared = &state.shared;
    clustered(shared)?;
    let req: HandshakeRequest = parse_json(&body)?;
    let challenge =
        unb64::<32>(&req.challenge).ok_or_else(|| ApiError::bad_request("challenge: not 32 bytes of base64"))?;
    let joining = Joining { api_address: None, credential: req.credential.clone() };
    let binding = Binding::Challenge(&challenge);
    let fresh = shared.access.admit_with(&req.hello, binding, unix_now(), joining).map_err(|r| {
        tracing::warn!(peer = %req.hello.node, reason = %r, "admin: refused a peer's handshake");
        ApiError::refused(r)
    })?;
    if fresh {
        tracing::info!(peer = %req.hello.node, "admitted a peer through its operator's `peers add`");
    }
    let answer = HandshakeResponse { hello: shared.access.hello(Binding::Challenge(&challenge)) };
    Ok((StatusCode::OK, Json(answer)).into_response())
}
