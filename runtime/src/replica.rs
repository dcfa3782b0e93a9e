//! Process groups (`pg`) and EVENTUAL names: state each node publishes
//! about its own processes and every other node copies.
//!
//! [`state`] is one node's published state and its changes; [`book`]
//! decides which incoming snapshot or change a copy takes; [`table`] is
//! the whole view with group watchers, and [`names`] settles EVENTUAL name
//! conflicts on it; [`wire`] is the `pg` mesh class; [`service`] connects
//! them to processes and peers.

pub(crate) mod book;
pub(crate) mod calls;
pub(crate) mod names;
pub(crate) mod service;
pub(crate) mod state;
pub(crate) mod table;
pub(crate) mod wire;
