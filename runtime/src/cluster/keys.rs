//! The cluster secrets a node holds: the one it sends with, and the ones it
//! still accepts while a rotation is under way.
//!
//! Gossip seals every datagram and the mesh opens every connection under a
//! key id that travels in the clear, so every node must give the same id to
//! the same secret without talking to anyone: the id is derived from the
//! secret itself. Two configured secrets that happen to share an id (one
//! chance in 256) are refused at start, with a message saying to generate
//! another key.
//!
//! A rotation without downtime, node by node:
//! 1. every node keeps `secret_key: OLD` and adds `accept_secret_keys: NEW`;
//! 2. every node switches to `secret_key: NEW` with `accept_secret_keys: OLD`;
//! 3. after `key_grace_period` the old key stops being accepted by itself
//!    (remove it from the config at the next convenient restart).

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use thiserror::Error;

/// A secret and its id.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) id: u8,
    pub(crate) secret: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The primary key and the extra accepted ones, each accepted until
/// `accept_until`.
#[derive(Clone, Debug)]
pub(crate) struct KeySet {
    pub(crate) primary: Key,
    pub(crate) accepted: Vec<(Key, Instant)>,
}

/// Why a set of secrets cannot be used together.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// Two different secrets map to the same id.
    #[error("two configured cluster keys share key id {0}; generate another key")]
    IdClash(u8),
}

/// The id every node gives `secret`.
pub(crate) fn key_id(secret: &[u8]) -> u8 {
    let mut h = Sha256::new();
    h.update(b"wippy cluster key id v1");
    h.update(secret);
    h.finalize()[0]
}

impl KeySet {
    /// Builds the set; `accept` secrets are accepted for `grace` from `now`.
    /// A secret listed twice (or equal to the primary) is kept once.
    pub(crate) fn new(primary: &[u8], accept: &[Vec<u8>], grace: Duration, now: Instant) -> Result<KeySet, KeyError> {
        let primary = Key { id: key_id(primary), secret: primary.to_vec() };
        let mut accepted: Vec<(Key, Instant)> = Vec::new();
        for secret in accept {
            if *secret == primary.secret || accepted.iter().any(|(k, _)| k.secret == *secret) {
                continue;
            }
            let id = key_id(secret);
            if id == primary.id || accepted.iter().any(|(k, _)| k.id == id) {
                return Err(KeyError::IdClash(id));
            }
            accepted.push((Key { id, secret: secret.clone() }, now + grace));
        }
        Ok(KeySet { primary, accepted })
    }

    /// The secret behind `id`, if it is accepted at `now`.
    pub(crate) fn lookup(&self, id: u8, now: Instant) -> Option<&[u8]> {
        if id == self.primary.id {
            return Some(&self.primary.secret);
        }
        self.accepted.iter().find(|(k, until)| k.id == id && now < *until).map(|(k, _)| k.secret.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_only_on_the_secret() {
        assert_eq!(key_id(b"a secret of enough length......."), key_id(b"a secret of enough length......."));
        let ids: std::collections::HashSet<u8> = (0..64u8).map(|i| key_id(&[i; 32])).collect();
        assert!(ids.len() > 40, "ids spread over the byte: {}", ids.len());
    }

    #[test]
    fn accepted_keys_expire_after_the_grace_period() {
        let now = Instant::now();
        let (old, new) = (vec![1u8; 32], vec![2u8; 32]);
        let set = KeySet::new(&new, &[old.clone(), old.clone(), new.clone()], Duration::from_secs(10), now).unwrap();
        assert_eq!(set.accepted.len(), 1, "duplicates and the primary are kept once");
        assert_eq!(set.lookup(key_id(&new), now + Duration::from_secs(99)), Some(&new[..]));
        assert_eq!(set.lookup(key_id(&old), now + Duration::from_secs(9)), Some(&old[..]));
        assert_eq!(set.lookup(key_id(&old), now + Duration::from_secs(10)), None);
        assert_eq!(set.lookup(key_id(&old).wrapping_add(1), now), None);
    }

    #[test]
    fn secrets_that_share_an_id_are_refused() {
        let base = [7u8; 32];
        let clash = (0..=u16::MAX)
            .map(|i| {
                let mut s = base;
                s[..2].copy_from_slice(&i.to_be_bytes());
                s
            })
            .find(|s| *s != base && key_id(s) == key_id(&base))
            .expect("among 65536 candidates some share the id");
        let err = KeySet::new(&base, &[clash.to_vec()], Duration::from_secs(1), Instant::now()).unwrap_err();
        assert_eq!(err, KeyError::IdClash(key_id(&base)));
    }
}
