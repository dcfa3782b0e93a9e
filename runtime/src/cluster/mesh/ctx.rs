//! What every mesh task needs: who we are, the key, the node, the stop signal.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handshake::Identity;
use crate::shared::Shared;

/// Shared by the listener, the per-peer writers and the readers.
pub(crate) struct Ctx {
    /// This node's mesh identity (name and a static key made at start).
    pub(crate) identity: Identity,
    /// Id of the cluster key in use; sent in the clear in flight 1.
    pub(crate) key_id: u8,
    /// The pre-shared key derived from the cluster secret.
    pub(crate) psk: [u8; 32],
    /// The node the traffic is for.
    pub(crate) shared: Arc<Shared>,
    /// Cancelled when the node stops the mesh.
    pub(crate) cancel: CancellationToken,
    /// Owns every task, so stopping can wait for all of them.
    pub(crate) tracker: TaskTracker,
}
