//! Who a node is, as far as gossip is concerned.
//!
//! foca puts the identity in the header of every datagram and in every
//! membership update it piggybacks, so it is deliberately small and stable:
//! only facts that do not change while the process lives belong here. Things
//! that change (load, raft role, bootstrap progress) travel as custom
//! broadcasts instead, so they do not force an identity change on every
//! update.

use std::net::SocketAddr;

use foca::Identity;
use serde::{Deserialize, Serialize};

/// A node's gossip identity.
///
/// foca keys members by [`Identity::addr`], so two identities with the same
/// gossip address are the same node in two lifetimes. The generation tells
/// them apart: a restarted node, or one that finds itself declared down,
/// comes back with a higher `gen` and replaces its old self everywhere
/// instead of being ignored as a ghost.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct NodeIdentity {
    /// Where this node receives gossip datagrams; the member's key.
    pub(crate) addr: SocketAddr,
    /// Lifetime counter; bumped on every rejoin. Spelled `r#gen` because
    /// `gen` is reserved in edition 2024; serde still writes it as `gen`.
    pub(crate) r#gen: u64,
    /// The node's name, as processes and operators refer to it.
    pub(crate) name: String,
    /// TCP port of the internode mesh on the same host as `addr`. Only the
    /// port travels: the host is the one gossip already reaches.
    pub(crate) internode_port: u16,
    /// Whether this node may be picked as a raft voter.
    pub(crate) raft_eligible: bool,
    /// Rank among eligible nodes; lower is picked first.
    pub(crate) raft_priority: u32,
    /// Rack, zone or host label; voters are spread across distinct values.
    pub(crate) failure_domain: String,
}

impl NodeIdentity {
    /// The address of the internode mesh listener of this node.
    pub(crate) fn internode_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr.ip(), self.internode_port)
    }
}

impl Identity for NodeIdentity {
    type Addr = SocketAddr;

    /// Always renewable: a node wrongly declared down (a long GC-like stall,
    /// a brief partition) rejoins by itself with the next generation rather
    /// than waiting for an operator or for `remove_down_after`.
    fn renew(&self) -> Option<Self> {
        Some(Self { r#gen: self.r#gen.wrapping_add(1), ..self.clone() })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The newer lifetime wins, so stale gossip about a previous run can
    /// never shadow the node that is running now.
    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.r#gen > adversary.r#gen
    }
}

#[cfg(test)]
mod tests {
    use foca::{Codec, Member, PostcardCodec};

    use super::*;

    fn typical() -> NodeIdentity {
        NodeIdentity {
            addr: "[2001:db8::17]:7946".parse().unwrap(),
            // A start time in nanoseconds is a realistic (and worst-case
            // varint) generation.
            r#gen: 1_790_000_000_000_000_000,
            name: "wippy-eu-west-1a-07".to_owned(),
            internode_port: 7947,
            raft_eligible: true,
            raft_priority: 100,
            failure_domain: "eu-west-1a".to_owned(),
        }
    }

    #[test]
    fn postcard_encoding_stays_small() {
        let mut buf = Vec::new();
        PostcardCodec.encode_member(&Member::alive(typical()), &mut buf).unwrap();
        // Every header and every piggybacked update carries one of these;
        // past ~100 bytes a 1.3 KB datagram holds too few updates.
        assert!(buf.len() < 100, "member encodes to {} bytes", buf.len());
    }

    #[test]
    fn postcard_round_trips() {
        let mut buf = Vec::new();
        let member = Member::alive(typical());
        PostcardCodec.encode_member(&member, &mut buf).unwrap();
        let decoded: Member<NodeIdentity> = PostcardCodec.decode_member(&buf[..]).unwrap();
        assert_eq!(decoded, member);
    }

    #[test]
    fn renew_bumps_generation_and_wins_the_address() {
        let old = typical();
        let new = old.renew().unwrap();
        assert_eq!(new.r#gen, old.r#gen + 1);
        assert_eq!(new.addr(), old.addr());
        assert_eq!(new.name, old.name);
        assert!(new.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&new));
    }

    #[test]
    fn internode_addr_shares_the_gossip_host() {
        let id = typical();
        assert_eq!(id.internode_addr(), "[2001:db8::17]:7947".parse::<SocketAddr>().unwrap());
    }
}
