//! Clustering: the pure cores (membership, mesh) and the gossip service
//! thread that owns the socket and drives the membership core.

pub(crate) mod events;
pub(crate) mod gossip;
pub(crate) mod keys;
pub(crate) mod membership;
pub(crate) mod mesh;
pub(crate) mod route;

#[cfg(test)]
pub(crate) mod testing;
