//! Who may call what: bearer tokens, their scopes, and the OAuth
//! client-credentials exchange that hands them out.
//!
//! Two kinds of bearer token are accepted: the static `admin.token` from
//! the config (every scope; for scripts and scrapers that cannot log in),
//! and short-lived tokens minted by `POST /v1/oauth/token` from the cluster
//! credential, which carry the scopes they were asked for.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};

use super::AppState;
use super::reply::{ApiError, ApiResult, ok};
use crate::identity::token::{self, Claims, TokenError};
use crate::identity::unix_now;

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// Compares every byte, so the time taken does not reveal a matching prefix.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request passes the static-token guard of `/readyz` and
/// `/metrics` (always, when no `admin.token` is set).
pub(super) fn static_guard(state: &AppState, headers: &HeaderMap) -> bool {
    match &state.token {
        None => true,
        Some(t) => bearer(headers).is_some_and(|given| same(given, t)),
    }
}

/// Checks the request's token grants `scope`.
pub(super) fn require(state: &AppState, headers: &HeaderMap, scope: &'static str) -> Result<(), ApiError> {
    let Some(given) = bearer(headers) else {
        return Err(ApiError::unauthorized(format!("this route needs a bearer token with scope {scope}")));
    };
    if let Some(t) = &state.token
        && same(given, t)
    {
        return Ok(());
    }
    let claims = token::check(&state.shared.access.key(), given, unix_now()).map_err(|e| match e {
        TokenError::Expired => ApiError::unauthorized("token expired: get a new one from /v1/oauth/token"),
        _ => ApiError::unauthorized("invalid token"),
    })?;
    claims.require(scope).map_err(|_| {
        ApiError::new(StatusCode::FORBIDDEN, "insufficient_scope", format!("the token lacks scope {scope}"))
    })
}

/// Reads `application/x-www-form-urlencoded` or JSON parameters.
fn params(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        let map: HashMap<String, serde_json::Value> = super::reply::parse_json(body)?;
        return Ok(map.into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned()))).collect());
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("request body is not UTF-8"))?;
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

/// Decodes one form field (`+` is a space, `%XX` a byte).
fn percent_decode(text: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request(format!("bad form encoding: {text}"));
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.next().and_then(|c| (c as char).to_digit(16)).ok_or_else(bad)?;
                let lo = bytes.next().and_then(|c| (c as char).to_digit(16)).ok_or_else(bad)?;
                out.push((hi * 16 + lo) as u8);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// `POST /v1/oauth/token`: the client-credentials grant.
pub(super) async fn token(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let p = params(&headers, &body)?;
    let field = |k: &str| p.get(k).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        ));
    }
    let (Some(client_id), Some(secret)) = (field("client_id"), field("client_secret")) else {
        return Err(ApiError::bad_request("client_id and client_secret are required"));
    };
    let scope = token::parse_scopes(field("scope"))
        .map_err(|s| ApiError::new(StatusCode::BAD_REQUEST, "invalid_scope", format!("unknown scope {s}")))?;
    let now = unix_now();
    let access = &state.shared.access;
    if access.login(client_id, secret, now).is_none() {
        tracing::warn!(%client_id, "admin: a token request with a wrong client id or secret");
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_client", "wrong client id or secret"));
    }
    let ttl = access.options().token_ttl.as_secs().max(1);
    let key = access.key();
    let claims =
        Claims { sub: client_id.to_owned(), scope: scope.clone(), exp: now + ttl, iss: key.peer_id().to_owned() };
    ok(serde_json::json!({
        "access_token": token::mint(&key, &claims),
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope.join(" "),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap());
        let p = params(&h, b"grant_type=client_credentials&scope=urn%3Awippy%3Apeers.read+x&empty=").unwrap();
        assert_eq!(p["grant_type"], "client_credentials");
        assert_eq!(p["scope"], "urn:wippy:peers.read x");
        assert_eq!(p["empty"], "");
        assert!(params(&h, b"a=%zz").is_err());
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert_eq!(params(&h, br#"{"client_id":"c"}"#).unwrap()["client_id"], "c");
    }
}
