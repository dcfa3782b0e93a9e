//! `cluster:`: gossip membership, the internode mesh and the bounded Raft core.
//!
//! Everything here is inert unless `cluster.enabled` is true; a node without it is a
//! single-node system. The sub-sections live in their own files:
//! [`MembershipConfig`] (SWIM gossip), [`InternodeConfig`] (the TCP mesh that also
//! carries Raft) and [`RaftConfig`] (the consensus core).

mod internode;
mod membership;
mod raft;

use serde::{Deserialize, Serialize};

pub use self::internode::InternodeConfig;
pub use self::membership::MembershipConfig;
pub use self::raft::{RaftConfig, RaftRole, RegistryBackend};
use crate::Duration;

/// The `cluster:` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a mapping of cluster settings")]
pub struct ClusterConfig {
    /// Turns clustering on. Off, the node runs alone and the rest of this section is
    /// ignored.
    pub enabled: bool,
    /// Name of this node in gossip. Kept for compatibility with Wippy configs: a node
    /// has one identity, so when `node.name` is also set the two must agree. See
    /// [`crate::Config::node_name`].
    pub name: Option<String>,
    /// Zone, rack or other failure group; voters are spread across distinct domains
    /// first. Empty means "no domain".
    pub failure_domain: String,
    /// A signed license file to use instead of one installed with `wippy bootstrap`.
    pub license_file: Option<String>,
    /// Gossip (SWIM) membership.
    pub membership: MembershipConfig,
    /// The internode TCP mesh (relay traffic and Raft RPCs).
    pub internode: InternodeConfig,
    /// The Raft consensus core.
    pub raft: RaftConfig,
    /// How long a deleted `store.kv.crdt` entry's tombstone is kept before it may be
    /// collected on age alone. 0 disables age-only collection.
    pub kv_crdt_tombstone_retention: Duration,
    /// Collect a `store.kv.crdt` tombstone only once every alive peer has seen it.
    pub kv_crdt_tombstone_gc_alive_peers: bool,
}

impl ClusterConfig {
    /// Whether this node runs a Raft replica: clustering on, Raft on, and the node is a
    /// server (not a gossip-only client).
    pub fn runs_raft(&self) -> bool {
        self.enabled && self.raft.enabled && self.raft.role == RaftRole::Server
    }

    /// The voter eligibility to advertise: `raft.eligible`, but never where this node
    /// runs no Raft replica.
    pub fn raft_eligible(&self) -> bool {
        self.runs_raft() && self.raft.eligible
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_runs_only_on_enabled_servers() {
        let mut cluster = ClusterConfig::default();
        assert!(!cluster.runs_raft());
        cluster.enabled = true;
        assert!(cluster.runs_raft());
        assert!(cluster.raft_eligible());
        cluster.raft.role = RaftRole::Client;
        assert!(!cluster.runs_raft());
        assert!(!cluster.raft_eligible());
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = ClusterConfig::default();
        assert!(!c.enabled);
        assert_eq!(c.membership.bind_port, 7946);
        assert_eq!(c.internode.bind_port, 0);
        assert!(c.internode.auto_port);
        assert_eq!(c.raft.max_voters, 5);
        assert_eq!(c.raft.max_standbys, 4);
        assert_eq!(c.raft.priority, 100);
        assert!(c.kv_crdt_tombstone_retention.is_zero());
    }
}
