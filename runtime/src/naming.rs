//! Process names: the LOCAL scope in this node's registry, the CONSISTENT
//! scope in the Raft state (`consistent.rs`). EVENTUAL and STRONG come later.

pub(crate) mod consistent;
mod registry;

pub use registry::{Registry, RegistryError};
