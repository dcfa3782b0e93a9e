//! What every mesh task needs: who we are, the key, the node, the stop signal.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handshake::{Identity, mesh_psk};
use crate::cluster::keys::KeySet;
use crate::shared::Shared;

/// Shared by the listener, the per-peer writers and the readers.
pub(crate) struct Ctx {
    /// This node's mesh identity (name and a static key made at start).
    pub(crate) identity: Identity,
    /// The public half of the identity's static key, which this node's
    /// admission hello is signed over.
    pub(crate) static_public: [u8; 32],
    /// The cluster secrets: the primary opens our connections, the others
    /// are accepted from peers during a rotation.
    pub(crate) keys: KeySet,
    /// The node the traffic is for.
    pub(crate) shared: Arc<Shared>,
    /// Cancelled when the node stops the mesh.
    pub(crate) cancel: CancellationToken,
    /// Owns every task, so stopping can wait for all of them.
    pub(crate) tracker: TaskTracker,
}

/// Salt of the mesh key; every node uses the same one.
const PSK_LABEL: &str = "wippy-mesh";

impl Ctx {
    /// `task`, ended early by the mesh's stop: every task on the mesh
    /// thread is wrapped so, whatever it awaits (Raft, which stops first,
    /// may never answer).
    pub(crate) fn until_stopped(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let cancel = self.cancel.clone();
        async move {
            tokio::select! {
                () = task => {}
                () = cancel.cancelled() => {}
            }
        }
    }

    /// The id and pre-shared key this node dials with.
    pub(crate) fn dial_key(&self) -> (u8, [u8; 32]) {
        (self.keys.primary.id, mesh_psk(PSK_LABEL, &self.keys.primary.secret))
    }

    /// The pre-shared key for a peer's key id, while that key is accepted.
    pub(crate) fn accept_key(&self, id: u8) -> Option<[u8; 32]> {
        self.keys.lookup(id, std::time::Instant::now()).map(|secret| mesh_psk(PSK_LABEL, secret))
    }
}
