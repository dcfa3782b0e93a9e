//! Cluster membership over gossip.
//!
//! Every gossip datagram is sealed before it leaves the node and opened
//! before the SWIM core sees it, so a peer without the cluster secret can
//! neither join nor feed the core garbage. [`seal`] is the packet format for
//! one key; [`keyring`] holds the keys a node accepts while a secret is being
//! rotated.

pub(crate) mod driver;
pub(crate) mod identity;
pub(crate) mod keyring;
pub(crate) mod seal;
