//! In-process nodes for the Raft tests: each a real mesh on a loopback
//! socket and a hand-written gossip view, so Raft traffic crosses real TCP
//! connections without starting gossip.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::keys::KeySet;
use crate::cluster::mesh::service::{Mesh, MeshOptions};
use crate::shared::{MemberInfo, MemberState, Shared};

/// One test node: its shared state, its mesh and the mesh's address.
pub(super) struct TestNode {
    pub(super) shared: Arc<Shared>,
    pub(super) mesh: Option<Mesh>,
    pub(super) addr: SocketAddr,
}

impl TestNode {
    /// A node called `name` with a running mesh.
    pub(super) fn start(name: &str) -> TestNode {
        let shared = Arc::new(Shared::new(name.into(), 1, 1 << 20));
        let keys = KeySet::new(&[9u8; 32], &[], Duration::from_secs(60), Instant::now()).unwrap();
        let opts = MeshOptions { bind: IpAddr::from([127, 0, 0, 1]), port: 0, keys };
        let mesh = Mesh::start(TcpListener::bind("127.0.0.1:0").unwrap(), &opts, shared.clone()).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], mesh.port()));
        TestNode { shared, mesh: Some(mesh), addr }
    }

    /// Stops the mesh (the node "dies" as far as its peers can tell).
    pub(super) fn stop_mesh(&mut self) {
        if let Some(m) = self.mesh.take() {
            m.stop();
        }
    }
}

/// Makes every node in `live` see exactly the nodes in `live`, all alive
/// and eligible for Raft.
pub(super) fn set_views(live: &[&TestNode]) {
    for node in live {
        let me = node.shared.node_id.clone();
        let view = live
            .iter()
            .map(|n| MemberInfo {
                name: n.shared.node_id.clone(),
                addr: String::new(),
                internode: n.addr,
                failure_domain: String::new(),
                state: MemberState::Alive,
                is_local: n.shared.node_id == me,
                generation: 1,
                raft_eligible: true,
                raft_priority: 0,
            })
            .collect();
        *node.shared.cluster.write().unwrap() = Some(view);
    }
}

/// Polls `cond` every 20 ms for up to `limit`.
pub(super) fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
