//! `cluster.membership:`: SWIM gossip, failure detection and the gossip key.

use serde::{Deserialize, Serialize};

use crate::addr::deserialize_port;
use crate::base64::{Base64Error, SECRET_KEY_LEN, decode_secret_key};
use crate::{AddrList, Duration};

/// The `cluster.membership:` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a mapping of membership settings")]
pub struct MembershipConfig {
    /// Interface the gossip socket listens on.
    pub bind_addr: String,
    /// Gossip port, TCP and UDP; the one port peers must be able to reach.
    #[serde(deserialize_with = "deserialize_port")]
    pub bind_port: u16,
    /// Address announced to peers when it differs from the bound one; the port
    /// announced is `bind_port`.
    pub advertise_addr: Option<String>,
    /// Nodes to contact when joining, `host:port` each, as a comma-separated string or
    /// a list. Empty on the first node of a new cluster.
    pub join_addrs: AddrList,
    /// Gossip encryption key, inline: base64 of 32 bytes. Every node needs the same one.
    pub secret_key: Option<String>,
    /// File holding the base64 key (surrounding whitespace ignored). Read at boot; when
    /// both are set, the file wins over `secret_key`.
    pub secret_file: Option<String>,
    /// Further keys (base64 of 32 bytes each; a list or a comma-separated string)
    /// accepted from other nodes, but never sent with, for `key_grace_period` after
    /// start: the means of rotating the cluster secret without a cluster-wide restart.
    pub accept_secret_keys: AddrList,
    /// Period between gossip rounds; each round pushes pending updates to a few
    /// random members.
    pub gossip_interval: Duration,
    /// Period between full state exchanges with a random peer (repairs drift).
    pub push_pull_interval: Duration,
    /// How long a dead node's name stays reserved before another node may take it.
    pub dead_node_reclaim_time: Duration,
    /// Period between failure-detection probes of a random peer.
    pub probe_interval: Duration,
    /// How long to wait for a probe's direct ack before asking peers to probe
    /// indirectly.
    pub probe_timeout: Duration,
    /// Scales how long a suspected node has to refute the suspicion before it is
    /// declared dead: the window is `suspicion_mult × probe_interval` (bigger is
    /// slower but tolerates more lost packets). At least 1.
    pub suspicion_mult: u32,
    /// How long a node with `join_addrs` may see no other member before its liveness
    /// check (`/livez`) fails. Also a grace after start, during which the gossip check
    /// never fails, so a node still finding its seeds is not restarted.
    pub isolation_grace: Duration,
    /// After the gossip key changes, how long messages under the previous key are
    /// still accepted, so a rolling key change does not split the cluster.
    pub key_grace_period: Duration,
}

/// The defaults are tuned for one LAN: a killed node is declared down within about
/// three seconds, yet a node that stalls for 2 s (a long pause, an overloaded host)
/// is only suspected, not declared dead. Detection ≈ time until some peer probes it
/// (< 300 ms) + one probe interval (300 ms) + the suspicion window (8 × 300 ms =
/// 2.4 s) ≈ 3 s at most. A stalled node is declared dead at the earliest one
/// probe interval + the window (2.7 s) after the stall starts, which leaves it
/// 0.7 s after a 2 s stall to refute the suspicion. `tests/t85_pause.rs` checks
/// this; with multipliers 3, 5, 6 and 7 such a stall was declared dead in some
/// runs.
impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            bind_addr: "0.0.0.0".to_owned(),
            bind_port: 7946,
            advertise_addr: None,
            join_addrs: AddrList::default(),
            secret_key: None,
            secret_file: None,
            accept_secret_keys: AddrList::default(),
            gossip_interval: Duration::from_millis(100),
            push_pull_interval: Duration::from_secs(5),
            dead_node_reclaim_time: Duration::from_secs(30),
            probe_interval: Duration::from_millis(300),
            probe_timeout: Duration::from_millis(100),
            suspicion_mult: 8,
            isolation_grace: Duration::from_secs(30),
            key_grace_period: Duration::from_secs(24 * 3_600),
        }
    }
}

impl MembershipConfig {
    /// The inline `secret_key` decoded, `None` when unset. (`secret_file` is read by the
    /// runtime; decode its contents with [`crate::decode_secret_key`].)
    pub fn inline_secret_key(&self) -> Result<Option<[u8; SECRET_KEY_LEN]>, Base64Error> {
        self.secret_key.as_deref().map(decode_secret_key).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_key_decodes_when_set() {
        let mut m = MembershipConfig::default();
        assert_eq!(m.inline_secret_key(), Ok(None));
        m.secret_key = Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into());
        assert!(matches!(m.inline_secret_key(), Ok(Some(k)) if k[1] == 1));
        m.secret_key = Some("nope!".into());
        assert!(m.inline_secret_key().is_err());
    }
}
