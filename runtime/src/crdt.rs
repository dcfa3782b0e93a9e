//! `store.kv.crdt`: eventually consistent stores that every node holds
//! whole and serves locally.
//!
//! [`map`] is the last-writer-wins map of one namespace, stamped by the
//! hybrid logical [`clock`]; [`stores`] serves processes and peers;
//! [`disk`] keeps durable namespaces across restarts; [`wire`] is what
//! travels between nodes, inside the `pg` mesh class.

pub(crate) mod clock;
pub(crate) mod disk;
pub(crate) mod map;
pub(crate) mod stores;
pub(crate) mod wire;
