//! The cluster credential: the client id and secret the CLI exchanges for
//! bearer tokens.
//!
//! It is made when the first node is bootstrapped and travels to every node
//! with the replica's sync messages, so the CLI can log in anywhere. Nodes
//! keep only a hash of the secret. Rotation makes a new secret and keeps
//! the old one valid for a grace period, so CLIs and scripts can move over
//! without an outage; after it the old secret stops working everywhere at
//! once, since every node holds the same deadline.
//!
//! Copies merge by a total order, so every node ends up with the same
//! record whatever order they arrive in: the higher generation wins (a
//! rotation beats what it rotated); between two records of the same
//! generation — two nodes bootstrapped apart, then joined — the older one
//! wins, so the credential of the first node keeps working.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{b64url, hex};

/// The secret a rotation replaced, and until when it still works.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    /// SHA-256 of the old secret (hex).
    pub secret_hash: String,
    /// Unix seconds; accepted strictly before.
    pub valid_until: u64,
}

/// One version of the credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// The client id; stays the same across rotations.
    pub client_id: String,
    /// 0 at creation, one more per rotation.
    pub generation: u64,
    /// When this version was made (unix seconds).
    pub created_at: u64,
    /// The peer id of the node that made it (the last tie-breaker).
    pub origin: String,
    /// SHA-256 of the secret (hex).
    pub secret_hash: String,
    /// The secret this version replaced, during its grace period.
    pub previous: Option<Previous>,
}

/// Which secret a login used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The current one.
    Current,
    /// The one before the last rotation, inside its grace period.
    Previous,
}

fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// A fresh secret from 32 random bytes.
fn new_secret(random: [u8; 32]) -> String {
    b64url(&random)
}

impl Credential {
    /// A new credential; returns it and its secret (shown once).
    pub fn create(client_id: String, origin: String, now: u64, random: [u8; 32]) -> (Credential, String) {
        let secret = new_secret(random);
        let cred = Credential {
            client_id,
            generation: 0,
            created_at: now,
            origin,
            secret_hash: hash(&secret),
            previous: None,
        };
        (cred, secret)
    }

    /// The next version: a new secret, and the current one valid for
    /// `grace_secs` more. A secret still in an earlier grace period stops
    /// at once (only one old secret is ever kept).
    pub fn rotate(&self, origin: String, now: u64, grace_secs: u64, random: [u8; 32]) -> (Credential, String) {
        let secret = new_secret(random);
        let cred = Credential {
            client_id: self.client_id.clone(),
            generation: self.generation + 1,
            created_at: now,
            origin,
            secret_hash: hash(&secret),
            previous: Some(Previous {
                secret_hash: self.secret_hash.clone(),
                valid_until: now.saturating_add(grace_secs),
            }),
        };
        (cred, secret)
    }

    /// Whether `client_id` and `secret` log in at `now`.
    pub fn accepts(&self, client_id: &str, secret: &str, now: u64) -> Option<Accepted> {
        if client_id != self.client_id {
            return None;
        }
        let given = hash(secret);
        if given == self.secret_hash {
            return Some(Accepted::Current);
        }
        match &self.previous {
            Some(p) if p.secret_hash == given && now < p.valid_until => Some(Accepted::Previous),
            _ => None,
        }
    }

    /// Whether this record replaces `other` when both meet (see the module
    /// doc for the order).
    pub fn supersedes(&self, other: &Credential) -> bool {
        let key =
            |c: &Credential| (std::cmp::Reverse(c.generation), c.created_at, c.origin.clone(), c.secret_hash.clone());
        key(self) < key(other)
    }

    /// Merges `theirs` into `ours`; returns whether `ours` changed.
    pub fn merge(ours: &mut Option<Credential>, theirs: Credential) -> bool {
        match ours {
            Some(mine) if !theirs.supersedes(mine) => false,
            _ => {
                *ours = Some(theirs);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    #[test]
    fn rotation_keeps_the_old_secret_for_the_grace_period_only() {
        let (v0, s0) = Credential::create("client".into(), "p1".into(), 100, [1; 32]);
        assert_eq!(v0.accepts("client", &s0, 100), Some(Accepted::Current));
        assert_eq!(v0.accepts("other", &s0, 100), None);
        assert_eq!(v0.accepts("client", "wrong", 100), None);

        let (v1, s1) = v0.rotate("p2".into(), 1_000, DAY, [2; 32]);
        assert_ne!(s0, s1);
        assert_eq!(v1.client_id, "client");
        assert_eq!(v1.accepts("client", &s1, 1_000), Some(Accepted::Current));
        assert_eq!(v1.accepts("client", &s0, 1_000 + DAY - 1), Some(Accepted::Previous));
        assert_eq!(v1.accepts("client", &s0, 1_000 + DAY), None, "the grace period is over");
        assert_eq!(v1.accepts("client", &s1, 1_000 + 10 * DAY), Some(Accepted::Current));

        // A second rotation inside the grace period retires the first secret.
        let (v2, s2) = v1.rotate("p1".into(), 2_000, DAY, [3; 32]);
        assert_eq!(v2.accepts("client", &s0, 2_000), None);
        assert_eq!(v2.accepts("client", &s1, 2_000), Some(Accepted::Previous));
        assert_eq!(v2.accepts("client", &s2, 2_000), Some(Accepted::Current));
    }

    #[test]
    fn copies_converge_whatever_the_order() {
        let (a, _) = Credential::create("a".into(), "p1".into(), 100, [1; 32]);
        let (b, _) = Credential::create("b".into(), "p2".into(), 200, [2; 32]);
        let (a1, _) = a.rotate("p3".into(), 300, DAY, [3; 32]);
        let all = [a.clone(), b.clone(), a1.clone()];
        let mut results = Vec::new();
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [1, 2, 0]] {
            let mut ours = None;
            for i in order {
                Credential::merge(&mut ours, all[i].clone());
            }
            results.push(ours.unwrap());
        }
        assert!(results.iter().all(|r| *r == a1), "the rotation wins everywhere");
        // Same generation: the older bootstrap wins.
        let mut ours = Some(b.clone());
        assert!(Credential::merge(&mut ours, a.clone()));
        assert!(!Credential::merge(&mut ours, b));
        assert_eq!(ours, Some(a));
    }
}
