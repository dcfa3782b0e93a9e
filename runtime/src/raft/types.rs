//! What the replicated log carries, and how nodes are named in it.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One change to the replicated state. Commands are applied in log order
/// on every replica, so applying one must depend on nothing but the state,
/// the command and its log index (see `kv.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Command {
    /// Sets `key` to `value` if `cond` holds.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
        /// When the put applies.
        cond: Cond,
        /// Lifetime from `now_ms`; `None` keeps the key until it is deleted.
        ttl_ms: Option<u64>,
        /// The proposer's wall clock, in milliseconds since the Unix epoch.
        now_ms: u64,
        /// The node the record belongs to, if it should go when that node
        /// leaves the cluster (a lock's holder): the leader removes records
        /// of departed owners.
        #[serde(default)]
        owner: Option<String>,
    },
    /// Removes `key` if `cond` holds.
    Delete {
        /// The key.
        key: String,
        /// When the delete applies (`Version`: only the holder of that
        /// write may remove it, as a lock release does).
        #[serde(default = "always")]
        cond: Cond,
        /// The proposer's wall clock (decides whether a TTL'd key was
        /// still there).
        now_ms: u64,
    },
    /// Removes every key whose lifetime ended by `now_ms` (proposed by the
    /// leader, so all replicas drop the same keys at the same log index).
    Expire {
        /// The leader's wall clock.
        now_ms: u64,
    },
}

fn always() -> Cond {
    Cond::Always
}

/// The condition of a [`Command::Put`] or [`Command::Delete`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Cond {
    /// Always.
    Always,
    /// Only if the key does not exist.
    Absent,
    /// Only if the key's version is this one (0: the key does not exist).
    Version(u64),
}

impl Command {
    /// The key a per-key command changes (`Expire` has none).
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Command::Put { key, .. } | Command::Delete { key, .. } => Some(key),
            Command::Expire { .. } => None,
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Put { key, value, .. } => write!(f, "put {key} ({} bytes)", value.len()),
            Command::Delete { key, .. } => write!(f, "delete {key}"),
            Command::Expire { now_ms } => write!(f, "expire keys due by {now_ms}"),
        }
    }
}

/// What applying a command answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Response {
    /// The command changed the key: the put's condition held, or the
    /// delete found a live key.
    pub(crate) applied: bool,
    /// The live value the key held before the command.
    pub(crate) previous: Option<Vec<u8>>,
    /// The key's version after the command (0: it does not exist).
    pub(crate) version: u64,
}

/// A member of the Raft configuration as the log records it: the node's
/// name and where its mesh listens (so a follower can point a client at
/// the leader).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RaftNode {
    /// The node's name (the node part of its PIDs).
    pub(crate) name: String,
    /// Its mesh address, `ip:port`.
    pub(crate) addr: String,
}

impl fmt::Display for RaftNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.addr)
    }
}

openraft::declare_raft_types!(
    /// The openraft type configuration of this node.
    pub(crate) TypeConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = RaftNode,
);

/// The Raft id of the node called `name`. Every node derives the same id
/// from the same name without asking anyone, which bootstrap needs (all
/// seeds must build the identical voter map); 64 bits of SHA-256 make a
/// clash between two names of one cluster practically impossible.
pub(crate) fn node_id(name: &str) -> u64 {
    let digest = Sha256::digest(name.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("SHA-256 is 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(node_id("n1"), node_id("n1"));
        assert_ne!(node_id("n1"), node_id("n2"));
        // A fixed value: changing the derivation would orphan every stored log.
        assert_eq!(node_id("n1"), u64::from_be_bytes(Sha256::digest(b"n1")[..8].try_into().unwrap()));
    }

    #[test]
    fn commands_travel_by_name() {
        let c = Command::Put {
            key: "k".into(),
            value: vec![1],
            cond: Cond::Absent,
            ttl_ms: Some(5),
            now_ms: 9,
            owner: Some("n1".into()),
        };
        let bytes = rmp_serde::to_vec_named(&c).unwrap();
        assert_eq!(rmp_serde::from_slice::<Command>(&bytes).unwrap(), c);
        assert_eq!(c.to_string(), "put k (1 bytes)");
    }
}
