//! Access control at run time: the node's identity and license as loaded,
//! who it admitted, the replicated cluster credential, and the node-to-node
//! exchange behind `peers add`.
//!
//! The rules themselves live in [`crate::identity`] as pure functions; this
//! module holds the state they act on and moves it between nodes.

pub(crate) mod dial;
pub(crate) mod state;
pub(crate) mod sync;

pub use state::{AccessError, AccessOptions};
