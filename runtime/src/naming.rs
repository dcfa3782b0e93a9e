//! Process names: the LOCAL scope in this node's registry, the CONSISTENT
//! scope in the Raft state (`consistent.rs`), STRONG names on top of it
//! (`strong.rs`). EVENTUAL names live with the process groups
//! (`replica/names.rs`), since both are state each node publishes about
//! its own processes.

pub(crate) mod consistent;
pub(crate) mod followed;
mod registry;
pub(crate) mod strong;

pub use registry::{Registry, RegistryError};
