//! Clustering. Only the pure cores live here so far; the tasks that own
//! sockets and feed them arrive with the gossip transport.

pub(crate) mod membership;
pub(crate) mod mesh;
