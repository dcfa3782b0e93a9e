//! What nodes replicate about access: the cluster credential and the signed
//! deactivations of peers that removed themselves.
//!
//! Both ride the replica's `pg` frames: in the greeting of every new
//! connection, in every anti-entropy round and as a broadcast when they
//! change. Both merge by rules that do not depend on arrival order (see
//! `identity::credential`; deactivations only accumulate), so every node
//! converges on the same state.

use serde::{Deserialize, Serialize};

use crate::identity::credential::Credential;
use crate::identity::node_key::{NodeKey, peer_id_of, verify};
use crate::identity::peers::Seen;
use crate::identity::{b64, unb64};

/// Domain separation for deactivation signatures.
const CONTEXT: &str = "wippy-deactivate v1";

/// A peer's signed statement that it left the cluster for good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Deactivation {
    /// The peer's node name.
    pub(crate) node: String,
    /// Its public key (base64); the peer id derives from it.
    pub(crate) public_key: String,
    /// When it left (unix seconds).
    pub(crate) at: u64,
    /// Its signature over the fields above (base64).
    pub(crate) signature: String,
}

impl Deactivation {
    fn message(node: &str, public_key: &str, at: u64) -> String {
        format!("{CONTEXT}\n{node}\n{public_key}\n{at}\n")
    }

    /// This node's own deactivation.
    pub(crate) fn sign(key: &NodeKey, node: &str, at: u64) -> Deactivation {
        let public_key = key.public_key_b64();
        let signature = b64(&key.sign(Self::message(node, &public_key, at).as_bytes()));
        Deactivation { node: node.to_owned(), public_key, at, signature }
    }

    /// The peer id it deactivates, if the signature holds.
    pub(crate) fn verified_peer(&self) -> Option<String> {
        let key = unb64::<32>(&self.public_key)?;
        let sig = unb64::<64>(&self.signature)?;
        verify(&key, Self::message(&self.node, &self.public_key, self.at).as_bytes(), &sig).then(|| peer_id_of(&key))
    }

    /// What the peer book records.
    pub(crate) fn seen(&self, peer_id: String) -> Seen {
        Seen { peer_id, node: self.node.clone(), public_key: self.public_key.clone(), ..Seen::default() }
    }
}

/// The replicated access state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccessSync {
    /// The cluster credential, once made.
    pub(crate) credential: Option<Credential>,
    /// Every deactivation known.
    pub(crate) deactivations: Vec<Deactivation>,
}

/// What merging a copy changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Merged {
    /// The credential was replaced.
    pub(crate) credential: bool,
    /// Newly learned deactivations, with their verified peer ids.
    pub(crate) deactivated: Vec<(String, Deactivation)>,
}

impl Merged {
    /// Whether anything changed.
    pub(crate) fn any(&self) -> bool {
        self.credential || !self.deactivated.is_empty()
    }
}

impl AccessSync {
    /// Merges `theirs` in. Deactivations whose signature fails are dropped
    /// (and logged): a forged one must not evict anyone.
    pub(crate) fn merge(&mut self, theirs: AccessSync) -> Merged {
        let mut merged = Merged::default();
        if let Some(c) = theirs.credential {
            merged.credential = Credential::merge(&mut self.credential, c);
        }
        for d in theirs.deactivations {
            let Some(peer_id) = d.verified_peer() else {
                tracing::warn!(node = %d.node, "access: a deactivation with a bad signature was ignored");
                continue;
            };
            if self.deactivations.iter().any(|known| known.public_key == d.public_key) {
                continue;
            }
            self.deactivations.push(d.clone());
            merged.deactivated.push((peer_id, d));
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deactivations_verify_and_merge_once() {
        let key = NodeKey::from_seed([4; 32]);
        let d = Deactivation::sign(&key, "n4", 50);
        assert_eq!(d.verified_peer().as_deref(), Some(key.peer_id()));
        let mut forged = d.clone();
        forged.node = "n1".into();
        assert_eq!(forged.verified_peer(), None);

        let mut ours = AccessSync::default();
        let theirs = AccessSync { credential: None, deactivations: vec![forged, d.clone()] };
        let merged = ours.merge(theirs.clone());
        assert_eq!(merged.deactivated, vec![(key.peer_id().to_string(), d)]);
        assert!(!ours.merge(theirs).any(), "a second copy changes nothing");
    }

    #[test]
    fn the_credential_merges_by_its_order() {
        let (c0, _) = Credential::create("c".into(), "p1".into(), 10, [1; 32]);
        let (c1, _) = c0.rotate("p1".into(), 20, 100, [2; 32]);
        let mut ours = AccessSync { credential: Some(c1.clone()), deactivations: vec![] };
        assert!(!ours.merge(AccessSync { credential: Some(c0), deactivations: vec![] }).any());
        assert_eq!(ours.credential, Some(c1));
    }
}
