//! The peer book: every node this one has admitted, with what the operator
//! set about it, kept in `<data_dir>/peers.json`.
//!
//! Records are keyed by peer id. A node that comes back under the same name
//! with a new identity (its data dir was wiped) replaces its old record, so
//! the node limit counts machines, not key pairs. Removed and deactivated
//! records stay, so the peer is refused until an operator adds it again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::write_atomic;

/// The file name under the data dir.
pub const FILE: &str = "peers.json";

/// Where a peer stands in this node's book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    /// Admitted; counts against the node limit.
    Active,
    /// An operator deleted it from this node; refused until added again.
    Removed,
    /// It removed itself with a signed announcement; refused for good.
    Deactivated,
}

impl PeerState {
    /// The lower-case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Active => "active",
            PeerState::Removed => "removed",
            PeerState::Deactivated => "deactivated",
        }
    }
}

/// One peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// Derived from its public key.
    pub peer_id: String,
    /// Its node name (process ids, gossip, Raft).
    pub node: String,
    /// A label the operator gave it on this node.
    #[serde(default)]
    pub name: Option<String>,
    /// Its Ed25519 public key (base64).
    pub public_key: String,
    /// The license it presented.
    #[serde(default)]
    pub license_id: Option<String>,
    /// Its admin API, when known (`peers add`, or its handshake said).
    #[serde(default)]
    pub api_address: Option<String>,
    /// Its gossip address, when known: a seed for the next start.
    #[serde(default)]
    pub gossip_address: Option<String>,
    /// When this node first admitted it (unix seconds).
    pub added_at: u64,
    /// Where it stands.
    pub state: PeerState,
    /// When `state` last changed (unix seconds).
    pub changed_at: u64,
}

/// What a handshake or `peers add` learned about a peer.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Peer id.
    pub peer_id: String,
    /// Node name.
    pub node: String,
    /// Public key (base64).
    pub public_key: String,
    /// License id it presented.
    pub license_id: Option<String>,
    /// Admin API address.
    pub api_address: Option<String>,
    /// Gossip address.
    pub gossip_address: Option<String>,
}

/// All records, and where they are kept.
#[derive(Debug, Default)]
pub struct PeerBook {
    records: BTreeMap<String, PeerRecord>,
    path: Option<PathBuf>,
}

impl PeerBook {
    /// Loads the book from `dir` (empty when the file is missing or `dir`
    /// is `None`: a diskless node keeps it in memory only).
    pub fn load(dir: Option<&std::path::Path>) -> PeerBook {
        let path = dir.map(|d| d.join(FILE));
        let records = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| match serde_json::from_str::<Vec<PeerRecord>>(&text) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "peers.json is unreadable; starting with an empty peer book");
                    None
                }
            })
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.peer_id.clone(), r))
            .collect();
        PeerBook { records, path }
    }

    /// Writes the book; failures are logged, since the peers it lost are
    /// learned again at their next handshake.
    fn save(&self) {
        let Some(path) = &self.path else { return };
        let all: Vec<&PeerRecord> = self.records.values().collect();
        let text = serde_json::to_string_pretty(&all).expect("peer records always serialize");
        if let Err(e) = write_atomic(path, &text, false) {
            tracing::warn!(path = %path.display(), error = %e, "could not save the peer book");
        }
    }

    /// A record by peer id.
    pub fn get(&self, peer_id: &str) -> Option<&PeerRecord> {
        self.records.get(peer_id)
    }

    /// The record of node `node`, if any.
    pub fn by_node(&self, node: &str) -> Option<&PeerRecord> {
        self.records.values().find(|r| r.node == node)
    }

    /// All records, by peer id.
    pub fn all(&self) -> impl Iterator<Item = &PeerRecord> {
        self.records.values()
    }

    /// Active peers other than `me` (a node name): seats in use besides ours.
    pub fn active_others(&self, me: &str) -> usize {
        self.records.values().filter(|r| r.state == PeerState::Active && r.node != me).count()
    }

    /// Records an admitted peer: new, or refreshing what it said about
    /// itself. An older record of the same node under another key goes.
    /// Returns whether the peer is new to the book.
    pub fn admit(&mut self, seen: Seen, now: u64) -> bool {
        let stale: Vec<String> = self
            .records
            .values()
            .filter(|r| r.node == seen.node && r.peer_id != seen.peer_id)
            .map(|r| r.peer_id.clone())
            .collect();
        for id in &stale {
            tracing::warn!(node = %seen.node, old = %id, new = %seen.peer_id, "peer came back with a new identity");
            self.records.remove(id);
        }
        let fresh = !self.records.contains_key(&seen.peer_id);
        let record = self.records.entry(seen.peer_id.clone()).or_insert_with(|| PeerRecord {
            peer_id: seen.peer_id.clone(),
            node: seen.node.clone(),
            name: None,
            public_key: seen.public_key.clone(),
            license_id: None,
            api_address: None,
            gossip_address: None,
            added_at: now,
            state: PeerState::Active,
            changed_at: now,
        });
        let before = record.clone();
        record.node = seen.node;
        record.public_key = seen.public_key;
        record.license_id = seen.license_id.or(record.license_id.take());
        record.api_address = seen.api_address.or(record.api_address.take());
        record.gossip_address = seen.gossip_address.or(record.gossip_address.take());
        if record.state == PeerState::Removed {
            record.state = PeerState::Active;
            record.changed_at = now;
        }
        if fresh || *record != before {
            self.save();
        }
        fresh
    }

    /// Sets the operator's label. `None` when the peer is unknown.
    pub fn rename(&mut self, peer_id: &str, name: Option<String>) -> Option<PeerRecord> {
        let record = self.records.get_mut(peer_id)?;
        record.name = name;
        let out = record.clone();
        self.save();
        Some(out)
    }

    /// Moves a peer to `state` (Removed, Deactivated). A deactivated peer
    /// never becomes merely removed. Returns the record, or `None` when
    /// unknown.
    pub fn set_state(&mut self, peer_id: &str, state: PeerState, now: u64) -> Option<PeerRecord> {
        let record = self.records.get_mut(peer_id)?;
        let changed = record.state != state && record.state != PeerState::Deactivated;
        if changed {
            record.state = state;
            record.changed_at = now;
        }
        let out = record.clone();
        if changed {
            self.save();
        }
        Some(out)
    }

    /// Records a deactivation of a peer this node may never have met.
    pub fn deactivate(&mut self, seen: Seen, now: u64) {
        if self.records.contains_key(&seen.peer_id) {
            self.set_state(&seen.peer_id, PeerState::Deactivated, now);
            return;
        }
        self.admit(seen.clone(), now);
        self.set_state(&seen.peer_id, PeerState::Deactivated, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, node: &str) -> Seen {
        Seen { peer_id: id.into(), node: node.into(), public_key: format!("key-{id}"), ..Seen::default() }
    }

    #[test]
    fn admitting_counts_and_refreshes() {
        let mut book = PeerBook::load(None);
        assert!(book.admit(seen("p1", "a"), 10));
        assert!(!book.admit(Seen { api_address: Some("a:8080".into()), ..seen("p1", "a") }, 20));
        assert!(book.admit(seen("p2", "b"), 30));
        assert_eq!(book.active_others("a"), 1);
        assert_eq!(book.active_others("c"), 2);
        let a = book.get("p1").unwrap();
        assert_eq!((a.added_at, a.api_address.as_deref()), (10, Some("a:8080")));
    }

    #[test]
    fn a_new_identity_replaces_the_old_record_of_a_node() {
        let mut book = PeerBook::load(None);
        book.admit(seen("p1", "a"), 1);
        book.admit(seen("p9", "a"), 2);
        assert!(book.get("p1").is_none());
        assert_eq!(book.by_node("a").unwrap().peer_id, "p9");
        assert_eq!(book.active_others("x"), 1);
    }

    #[test]
    fn removal_frees_a_seat_and_re_adding_restores_it_but_deactivation_sticks() {
        let mut book = PeerBook::load(None);
        book.admit(seen("p1", "a"), 1);
        book.set_state("p1", PeerState::Removed, 2);
        assert_eq!(book.active_others("x"), 0);
        book.admit(seen("p1", "a"), 3);
        assert_eq!(book.get("p1").unwrap().state, PeerState::Active);
        book.deactivate(seen("p1", "a"), 4);
        book.admit(seen("p1", "a"), 5);
        book.set_state("p1", PeerState::Removed, 6);
        assert_eq!(book.get("p1").unwrap().state, PeerState::Deactivated);
        book.deactivate(seen("p7", "z"), 7);
        assert_eq!(book.get("p7").unwrap().state, PeerState::Deactivated);
    }

    #[test]
    fn the_book_survives_a_reload() {
        let dir = std::env::temp_dir().join(format!("wippy-peers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut book = PeerBook::load(Some(&dir));
        book.admit(seen("p1", "a"), 1);
        book.rename("p1", Some("primary".into()));
        let back = PeerBook::load(Some(&dir));
        assert_eq!(back.get("p1").unwrap().name.as_deref(), Some("primary"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
