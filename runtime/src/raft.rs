//! The bounded Raft core: the replicated log behind cluster-wide names,
//! locks and the linearizable KV store.
//!
//! openraft is pinned to an exact alpha and used only through this module,
//! so an upgrade touches one folder. Parts, in data-flow order:
//! - [`request`] and [`client`]: what a node asks of the core (writes,
//!   linearizable reads) and how it reaches the leader from anywhere;
//!   [`endpoint`] serves them, and the consensus calls, on the local node.
//! - [`types`] and [`kv`]: the commands and the pure rules of the
//!   replicated KV (versions, conditions, lifetimes, owners).
//! - [`log_store`] and [`state_machine`]: durable storage on redb under
//!   `<raft.data_dir>/_sys/raft`, one file each so log appends and applies
//!   do not queue on redb's single writer; [`store`] opens both, and
//!   `snapshot` is the format of a state-machine snapshot.
//! - [`rpc`], [`transport`], [`network`], [`chunks`]: the network rides the
//!   mesh's `raft` class (there is no Raft port); snapshots go in chunks.
//! - [`service`] runs the instance on its own thread; `round` is one tick
//!   of it, [`upkeep`] the leader's housekeeping.
//! - Pure cores, tested without sockets or clocks: [`roles`] (who votes),
//!   [`plan`] (how the leader moves the configuration there) and
//!   [`bootstrap`] (when a fresh cluster forms, and with whom).

pub(crate) mod bootstrap;
pub(crate) mod chunks;
pub(crate) mod churn;
pub(crate) mod client;
pub(crate) mod endpoint;
pub(crate) mod kv;
pub(crate) mod liveness;
pub(crate) mod log_store;
pub(crate) mod name_index;
pub(crate) mod network;
mod orphans;
pub(crate) mod plan;
pub(crate) mod request;
pub(crate) mod roles;
mod round;
pub(crate) mod rpc;
pub(crate) mod service;
mod snapshot;
pub(crate) mod state_machine;
pub(crate) mod store;
#[cfg(test)]
mod store_test;
pub(crate) mod transport;
pub(crate) mod types;
pub(crate) mod upkeep;

#[cfg(test)]
mod claims_test;
#[cfg(test)]
mod service_test;
#[cfg(test)]
mod test_cluster;
#[cfg(test)]
mod transport_test;
