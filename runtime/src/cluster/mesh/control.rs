//! The `control` class: what the two ends of a connection tell each other
//! about themselves, as opposed to traffic they carry for others.

use serde::{Deserialize, Serialize};

/// One control frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Control {
    /// The sender closes this connection on purpose, so the close is no
    /// sign that its process died.
    Bye,
    /// Facts about the sender that change over its life and that peers
    /// act on. Sent first on every connection and again when they change.
    Status {
        /// The sender belongs to a formed Raft cluster, so nobody who can
        /// see it should bootstrap a new one.
        raft_member: bool,
        /// The id of that Raft cluster, once its first leader wrote one: a
        /// leader re-admits a former member of its own cluster and leaves
        /// members of other clusters alone.
        #[serde(default)]
        raft_cluster: Option<String>,
    },
}

impl Control {
    /// The frame payload (MessagePack with named fields).
    pub(crate) fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("plain data always serializes")
    }

    /// Reads a payload; bad bytes are an error, never a panic.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Control, String> {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let status = Control::Status { raft_member: true, raft_cluster: Some("c1".into()) };
        for c in [Control::Bye, status] {
            assert_eq!(Control::decode(&c.encode()), Ok(c));
        }
        assert!(Control::decode(b"bye").is_err());
        assert!(Control::decode(&[]).is_err());
    }
}
