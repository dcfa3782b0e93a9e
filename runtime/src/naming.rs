//! Process names. Single node: the LOCAL scope; cluster scopes arrive with
//! the Raft core and gossip.

mod registry;

pub use registry::{Registry, RegistryError};
