//! `cluster.internode:`: the TCP mesh between nodes.

use serde::{Deserialize, Serialize};

use crate::addr::deserialize_port;

/// The `cluster.internode:` section. Raft has no port of its own: its RPCs ride this
/// mesh, and the port is advertised in gossip, so usually only the gossip port needs
/// to be reachable from a fixed number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a mapping of internode settings")]
pub struct InternodeConfig {
    /// Interface to listen on.
    pub bind_addr: String,
    /// TCP port. 0 (the default) picks one at boot: the first free port in 7950..=7959,
    /// else one from the OS. The only port key where 0 is allowed.
    #[serde(deserialize_with = "deserialize_port")]
    pub bind_port: u16,
    /// Pick the port once at boot, keep it for the node's life and publish it in gossip
    /// so peers can dial it.
    pub auto_port: bool,
    /// Address peers should dial, when it differs from the bound one (NAT, containers).
    pub advertise_addr: Option<String>,
}

impl Default for InternodeConfig {
    fn default() -> Self {
        InternodeConfig { bind_addr: "0.0.0.0".to_owned(), bind_port: 0, auto_port: true, advertise_addr: None }
    }
}

impl InternodeConfig {
    /// Ports tried in order when `bind_port` is 0, before asking the OS for any.
    pub const AUTO_PORTS: std::ops::RangeInclusive<u16> = 7950..=7959;
}
