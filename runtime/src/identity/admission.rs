//! Who may connect: the identity each side presents in the internode
//! handshake (and in `peers add`), and the rules that admit or refuse it.
//!
//! A [`Hello`] carries the node's name, its Ed25519 public key, a signature
//! binding that key to the connection's Noise static key (or, over HTTP, to
//! a challenge), and its license. [`check`] compares it with this node's own
//! license and peer book and answers with a [`Refusal`] whose text is what
//! operators see after "handshake failed: ".

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::license::License;
use super::node_key::{NodeKey, peer_id_of, verify};
use super::peers::{PeerBook, PeerState, Seen};
use super::{b64, unb64};

/// Domain separation for the signature over a mesh static key.
const MESH_CONTEXT: &[u8] = b"wippy-mesh-static v1\n";
/// Domain separation for the signature over an HTTP handshake challenge.
const CHALLENGE_CONTEXT: &[u8] = b"wippy-peer-challenge v1\n";

/// Why a peer was refused. The messages are the ones the operator guide
/// documents; keep them stable.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Different license ids or cluster ids, or one side has none.
    #[error("license mismatch")]
    LicenseMismatch,
    /// A signature (the peer's proof, or its license under our issuer key)
    /// does not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// Admitting it would exceed the license's node limit.
    #[error("node limit exceeded")]
    NodeLimitExceeded,
    /// This node's license has expired; no new peers are admitted.
    #[error("license expired")]
    LicenseExpired,
    /// The peer removed itself from the cluster.
    #[error("peer deactivated")]
    Deactivated,
    /// An operator deleted the peer on this node.
    #[error("peer removed")]
    Removed,
}

impl Refusal {
    /// Every refusal.
    pub const ALL: [Refusal; 6] = [
        Refusal::LicenseMismatch,
        Refusal::InvalidSignature,
        Refusal::NodeLimitExceeded,
        Refusal::LicenseExpired,
        Refusal::Deactivated,
        Refusal::Removed,
    ];

    /// A stable machine-readable code for API errors.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::LicenseMismatch => "license_mismatch",
            Refusal::InvalidSignature => "invalid_signature",
            Refusal::NodeLimitExceeded => "node_limit_exceeded",
            Refusal::LicenseExpired => "license_expired",
            Refusal::Deactivated => "peer_deactivated",
            Refusal::Removed => "peer_removed",
        }
    }
}

/// What a node presents about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Node name.
    pub node: String,
    /// Ed25519 public key (base64); the peer id is derived from it.
    pub public_key: String,
    /// Signature (base64) over the connection's binding: the mesh static
    /// key, or the HTTP challenge.
    pub proof: String,
    /// The license it holds.
    pub license: Option<License>,
    /// Its admin API address, when it runs one.
    pub api_address: Option<String>,
    /// Its gossip address, when clustered.
    pub gossip_address: Option<String>,
}

/// What binds a [`Hello`] to one connection.
#[derive(Clone, Copy, Debug)]
pub enum Binding<'a> {
    /// The sender's Noise static public key: replaying the hello on another
    /// connection needs the matching private key.
    MeshStatic(&'a [u8; 32]),
    /// A fresh challenge from the asking side.
    Challenge(&'a [u8]),
}

impl Binding<'_> {
    fn message(&self) -> Vec<u8> {
        let (context, bytes): (&[u8], &[u8]) = match self {
            Binding::MeshStatic(k) => (MESH_CONTEXT, &k[..]),
            Binding::Challenge(c) => (CHALLENGE_CONTEXT, c),
        };
        [context, bytes].concat()
    }
}

/// What this node knows about itself when presenting or checking.
#[derive(Clone, Debug)]
pub struct Local {
    /// Node name.
    pub node: String,
    /// Its signing key.
    pub key: NodeKey,
    /// Its license.
    pub license: Option<License>,
    /// Its admin API address.
    pub api_address: Option<String>,
    /// Its gossip address.
    pub gossip_address: Option<String>,
}

impl Local {
    /// This node's hello, bound to `binding`.
    pub fn hello(&self, binding: Binding<'_>) -> Hello {
        Hello {
            node: self.node.clone(),
            public_key: self.key.public_key_b64(),
            proof: b64(&self.key.sign(&binding.message())),
            license: self.license.clone(),
            api_address: self.api_address.clone(),
            gossip_address: self.gossip_address.clone(),
        }
    }
}

impl Hello {
    /// The peer id its key stands for; `None` when the key is not a key.
    pub fn peer_id(&self) -> Option<String> {
        unb64::<32>(&self.public_key).map(|k| peer_id_of(&k))
    }

    /// What the peer book records about the sender.
    pub fn seen(&self) -> Seen {
        Seen {
            peer_id: self.peer_id().unwrap_or_default(),
            node: self.node.clone(),
            public_key: self.public_key.clone(),
            license_id: self.license.as_ref().map(|l| l.license_id.clone()),
            api_address: self.api_address.clone(),
            gossip_address: self.gossip_address.clone(),
        }
    }
}

/// Decides whether `peer` may connect. `now` is unix seconds.
///
/// The order matters to operators: a peer of another cluster hears
/// "license mismatch" even if its signature is also wrong, since that is
/// the actionable cause.
pub fn check(local: &Local, book: &PeerBook, peer: &Hello, binding: Binding<'_>, now: u64) -> Result<(), Refusal> {
    match (&local.license, &peer.license) {
        (None, None) => {}
        (Some(ours), Some(theirs)) if ours.same_cluster(theirs) => {
            if theirs.verify_with(&ours.issuer_public_key).is_err() {
                return Err(Refusal::InvalidSignature);
            }
        }
        _ => return Err(Refusal::LicenseMismatch),
    }
    let key = unb64::<32>(&peer.public_key).ok_or(Refusal::InvalidSignature)?;
    let proof = unb64::<64>(&peer.proof).ok_or(Refusal::InvalidSignature)?;
    if !verify(&key, &binding.message(), &proof) {
        return Err(Refusal::InvalidSignature);
    }
    let peer_id = peer_id_of(&key);
    let known = book.get(&peer_id);
    match known.map(|r| r.state) {
        Some(PeerState::Deactivated) => return Err(Refusal::Deactivated),
        Some(PeerState::Removed) => return Err(Refusal::Removed),
        Some(PeerState::Active) => return Ok(()),
        None => {}
    }
    if let Some(license) = &local.license {
        if license.check_current(now).is_err() {
            return Err(Refusal::LicenseExpired);
        }
        // A node already in the book under another key keeps its seat.
        let has_seat = book.by_node(&peer.node).is_some_and(|r| r.state == PeerState::Active);
        if !has_seat && book.active_others(&local.node) + 2 > license.max_nodes as usize {
            return Err(Refusal::NodeLimitExceeded);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::license::IssuerKey;

    fn local(node: &str, seed: u8, license: Option<License>) -> Local {
        Local {
            node: node.into(),
            key: NodeKey::from_seed([seed; 32]),
            license,
            api_address: None,
            gossip_address: None,
        }
    }

    fn lic(issuer: &IssuerKey, id: &str, max: u32) -> License {
        issuer.issue(id.into(), "cluster".into(), max, 0, 1_000)
    }

    const STATIC: [u8; 32] = [9; 32];

    fn attempt(me: &Local, book: &PeerBook, peer: &Local) -> Result<(), Refusal> {
        let hello = peer.hello(Binding::MeshStatic(&STATIC));
        check(me, book, &hello, Binding::MeshStatic(&STATIC), 10)
    }

    #[test]
    fn the_same_license_admits_and_unlicensed_pairs_admit_each_other() {
        let issuer = IssuerKey::from_seed([1; 32]);
        let book = PeerBook::default();
        let (a, b) = (local("a", 1, Some(lic(&issuer, "l1", 3))), local("b", 2, Some(lic(&issuer, "l1", 3))));
        assert_eq!(attempt(&a, &book, &b), Ok(()));
        assert_eq!(attempt(&local("a", 1, None), &book, &local("b", 2, None)), Ok(()));
    }

    #[test]
    fn each_refusal_has_its_cause() {
        let issuer = IssuerKey::from_seed([1; 32]);
        let book = PeerBook::default();
        let a = local("a", 1, Some(lic(&issuer, "l1", 3)));
        assert_eq!(attempt(&a, &book, &local("b", 2, Some(lic(&issuer, "l2", 3)))), Err(Refusal::LicenseMismatch));
        assert_eq!(attempt(&a, &book, &local("b", 2, None)), Err(Refusal::LicenseMismatch));
        assert_eq!(attempt(&local("b", 2, None), &book, &a), Err(Refusal::LicenseMismatch));
        let forged = lic(&IssuerKey::from_seed([2; 32]), "l1", 3);
        assert_eq!(attempt(&a, &book, &local("b", 2, Some(forged))), Err(Refusal::InvalidSignature));

        // A proof bound to another static key (a replayed hello) fails.
        let b = local("b", 2, Some(lic(&issuer, "l1", 3)));
        let hello = b.hello(Binding::MeshStatic(&[7; 32]));
        assert_eq!(check(&a, &book, &hello, Binding::MeshStatic(&STATIC), 10), Err(Refusal::InvalidSignature));
        // A public key swapped for another one fails too.
        let mut swapped = b.hello(Binding::MeshStatic(&STATIC));
        swapped.public_key = NodeKey::from_seed([3; 32]).public_key_b64();
        assert_eq!(check(&a, &book, &swapped, Binding::MeshStatic(&STATIC), 10), Err(Refusal::InvalidSignature));
        // Past its expiry, this node admits no one new.
        let hello = b.hello(Binding::MeshStatic(&STATIC));
        assert_eq!(check(&a, &book, &hello, Binding::MeshStatic(&STATIC), 1_000), Err(Refusal::LicenseExpired));
    }

    #[test]
    fn the_node_limit_counts_this_node_and_known_peers() {
        let issuer = IssuerKey::from_seed([1; 32]);
        let me = local("a", 1, Some(lic(&issuer, "l1", 2)));
        let mut book = PeerBook::default();
        let b = local("b", 2, Some(lic(&issuer, "l1", 2)));
        assert_eq!(attempt(&me, &book, &b), Ok(()));
        book.admit(b.hello(Binding::MeshStatic(&STATIC)).seen(), 1);
        let c = local("c", 3, Some(lic(&issuer, "l1", 2)));
        assert_eq!(attempt(&me, &book, &c), Err(Refusal::NodeLimitExceeded));
        // A known peer is still admitted at the limit, also under a new key.
        assert_eq!(attempt(&me, &book, &b), Ok(()));
        assert_eq!(attempt(&me, &book, &local("b", 4, Some(lic(&issuer, "l1", 2)))), Ok(()));
        // Removing a peer frees its seat; the removed peer is refused.
        let id = b.key.peer_id().to_string();
        book.set_state(&id, PeerState::Removed, 2);
        assert_eq!(attempt(&me, &book, &c), Ok(()));
        assert_eq!(attempt(&me, &book, &b), Err(Refusal::Removed));
        book.set_state(&id, PeerState::Deactivated, 3);
        assert_eq!(attempt(&me, &book, &b), Err(Refusal::Deactivated));
    }

    #[test]
    fn challenge_bindings_are_separate_from_mesh_bindings() {
        let a = local("a", 1, None);
        let b = local("b", 2, None);
        let hello = b.hello(Binding::Challenge(&STATIC));
        let book = PeerBook::default();
        assert_eq!(check(&a, &book, &hello, Binding::Challenge(&STATIC), 0), Ok(()));
        assert_eq!(check(&a, &book, &hello, Binding::MeshStatic(&STATIC), 0), Err(Refusal::InvalidSignature));
    }
}
