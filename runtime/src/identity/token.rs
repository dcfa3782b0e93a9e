//! Short-lived bearer tokens for the admin API.
//!
//! `POST /v1/oauth/token` trades the cluster credential for a token that
//! names its scopes and expiry, signed with the issuing node's key. The node
//! checks the signature and the expiry on every request and keeps no token
//! table; a token works on the node that issued it (the CLI fetches one per
//! node it talks to).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::node_key::{NodeKey, verify};
use super::{b64url, unb64url};

/// Read the peer list, the cluster status and the license.
pub const PEERS_READ: &str = "urn:wippy:peers.read";
/// Add, rename, delete peers; remove this node.
pub const PEERS_WRITE: &str = "urn:wippy:peers.write";
/// Everything, including bootstrap, sync and credential rotation.
pub const CLUSTER_ADMIN: &str = "urn:wippy:cluster.admin";
/// Every scope, in the order they are documented.
pub const ALL_SCOPES: [&str; 3] = [PEERS_READ, PEERS_WRITE, CLUSTER_ADMIN];

/// Why a token was not accepted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token, or not signed by this node.
    #[error("invalid token")]
    Invalid,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Valid, but without the scope the route needs.
    #[error("token lacks scope {0}")]
    Scope(&'static str),
}

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The client id it was issued to.
    pub sub: String,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// Expiry (unix seconds).
    pub exp: u64,
    /// The issuing node's peer id.
    pub iss: String,
}

impl Claims {
    /// Whether the token grants `scope`; `cluster.admin` grants all.
    pub fn require(&self, scope: &'static str) -> Result<(), TokenError> {
        if self.scope.iter().any(|s| s == scope || s == CLUSTER_ADMIN) { Ok(()) } else { Err(TokenError::Scope(scope)) }
    }
}

/// Parses a requested `scope` parameter (space-separated). Empty: all.
/// Unknown scopes are an error naming the first.
pub fn parse_scopes(requested: Option<&str>) -> Result<Vec<String>, String> {
    let requested = requested.map(str::trim).unwrap_or("");
    if requested.is_empty() {
        return Ok(ALL_SCOPES.iter().map(|s| s.to_string()).collect());
    }
    requested
        .split_whitespace()
        .map(|s| if ALL_SCOPES.contains(&s) { Ok(s.to_string()) } else { Err(s.to_string()) })
        .collect()
}

/// Signs `claims` into a token.
pub fn mint(key: &NodeKey, claims: &Claims) -> String {
    let body = b64url(&serde_json::to_vec(claims).expect("claims always serialize"));
    let sig = b64url(&key.sign(body.as_bytes()));
    format!("{body}.{sig}")
}

/// Checks a token's signature (by `key`) and expiry at `now`.
pub fn check(key: &NodeKey, token: &str, now: u64) -> Result<Claims, TokenError> {
    let (body, sig) = token.split_once('.').ok_or(TokenError::Invalid)?;
    let sig: [u8; 64] = unb64url(sig).and_then(|s| s.try_into().ok()).ok_or(TokenError::Invalid)?;
    if !verify(&key.public_key(), body.as_bytes(), &sig) {
        return Err(TokenError::Invalid);
    }
    let claims: Claims = unb64url(body).and_then(|b| serde_json::from_slice(&b).ok()).ok_or(TokenError::Invalid)?;
    if claims.iss != key.peer_id() {
        return Err(TokenError::Invalid);
    }
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(key: &NodeKey, scope: &[&str], exp: u64) -> Claims {
        Claims { sub: "c".into(), scope: scope.iter().map(|s| s.to_string()).collect(), exp, iss: key.peer_id().into() }
    }

    #[test]
    fn a_token_checks_on_its_issuer_until_it_expires() {
        let key = NodeKey::from_seed([1; 32]);
        let token = mint(&key, &claims(&key, &[PEERS_READ], 100));
        let got = check(&key, &token, 99).unwrap();
        assert_eq!(got.require(PEERS_READ), Ok(()));
        assert_eq!(got.require(PEERS_WRITE), Err(TokenError::Scope(PEERS_WRITE)));
        assert_eq!(check(&key, &token, 100), Err(TokenError::Expired));
        assert_eq!(check(&NodeKey::from_seed([2; 32]), &token, 1), Err(TokenError::Invalid));
        assert_eq!(check(&key, "garbage", 1), Err(TokenError::Invalid));
        let (body, sig) = token.split_once('.').unwrap();
        let forged = claims(&key, &[CLUSTER_ADMIN], 100);
        let forged_body = b64url(&serde_json::to_vec(&forged).unwrap());
        assert_ne!(body, forged_body);
        assert_eq!(check(&key, &format!("{forged_body}.{sig}"), 1), Err(TokenError::Invalid));
    }

    #[test]
    fn admin_grants_everything_and_scopes_parse() {
        let key = NodeKey::from_seed([1; 32]);
        let admin = claims(&key, &[CLUSTER_ADMIN], 10);
        assert!(ALL_SCOPES.iter().all(|s| admin.require(s).is_ok()));
        assert_eq!(parse_scopes(None).unwrap().len(), 3);
        assert_eq!(parse_scopes(Some(" urn:wippy:peers.read ")).unwrap(), vec![PEERS_READ.to_string()]);
        assert_eq!(parse_scopes(Some("urn:wippy:peers.read bogus")), Err("bogus".to_string()));
    }
}
