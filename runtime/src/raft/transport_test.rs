//! Raft calls between two meshes on real loopback sockets: answers find
//! their callers, a node without a Raft instance answers with an error, a
//! call to a node that is not a member fails at once.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::Vote;
use openraft::network::RPCOption;
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::{RaftNetworkFactory, RaftNetworkV2};

use super::network::MeshNetwork;
use super::rpc::{Answer, Call};
use super::transport::{CallFuture, Endpoint};
use super::types::{RaftNode, TypeConfig, node_id};
use crate::cluster::keys::KeySet;
use crate::cluster::mesh::service::{Mesh, MeshOptions};
use crate::shared::{MemberInfo, MemberState, Shared};

/// Grants every vote and says who it is in the response's vote.
struct Granting(u64);

impl Endpoint for Granting {
    fn answer(&self, call: Call) -> CallFuture {
        let me = self.0;
        Box::pin(async move {
            match call {
                Call::Vote(req) => {
                    Ok(Answer::Vote(VoteResponse::new(Vote::new(req.vote.leader_id.term, me), None, true)))
                }
                _ => Err("only votes here".to_owned()),
            }
        })
    }
}

fn node(name: &str) -> (Arc<Shared>, Mesh, SocketAddr) {
    let shared = Arc::new(Shared::new(name.into(), 1, 1 << 20));
    let keys = KeySet::new(&[9u8; 32], &[], Duration::from_secs(60), Instant::now()).unwrap();
    let opts = MeshOptions { bind: IpAddr::from([127, 0, 0, 1]), port: 0, keys };
    let mesh = Mesh::start(TcpListener::bind("127.0.0.1:0").unwrap(), &opts, shared.clone()).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], mesh.port()));
    (shared, mesh, addr)
}

fn member(name: &str, internode: SocketAddr, is_local: bool) -> MemberInfo {
    MemberInfo {
        name: name.into(),
        addr: String::new(),
        internode,
        failure_domain: String::new(),
        state: MemberState::Alive,
        is_local,
        generation: 1,
    }
}

#[test]
fn votes_cross_the_mesh_and_come_back() {
    let (a, mesh_a, addr_a) = node("a");
    let (b, mesh_b, addr_b) = node("b");
    for s in [&a, &b] {
        let me = s.node_id.clone();
        let view = [member("a", addr_a, me == "a"), member("b", addr_b, me == "b")];
        *s.cluster.write().unwrap() = Some(view.into_iter().collect());
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut factory = MeshNetwork { id: node_id("a"), name: "a".into(), shared: a.clone() };
        let mut to_b = factory.new_client(node_id("b"), &RaftNode { name: "b".into(), addr: addr_b.to_string() }).await;
        let opt = RPCOption::new(Duration::from_secs(5));
        let req = VoteRequest::<TypeConfig>::new(Vote::new(4, node_id("a")), None);

        // No Raft instance on b yet: an error answer, not a timeout.
        let started = Instant::now();
        let err = to_b.vote(req.clone(), opt.clone()).await.unwrap_err();
        assert!(err.to_string().contains("raft is not running"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(4), "answered, not timed out");

        b.raft_transport.set_endpoint(Some(Arc::new(Granting(node_id("b")))));
        for term in 5..25 {
            let req = VoteRequest::<TypeConfig>::new(Vote::new(term, node_id("a")), None);
            let resp = to_b.vote(req, opt.clone()).await.unwrap();
            assert!(resp.vote_granted);
            assert_eq!(resp.vote.leader_id.term, term, "each answer reaches its own call");
        }

        // A node that is not a member: refused at once.
        let mut to_c = factory.new_client(node_id("c"), &RaftNode { name: "c".into(), addr: String::new() }).await;
        let err = to_c.vote(req, opt).await.unwrap_err();
        assert!(err.to_string().contains("not a reachable member"), "{err}");
    });
    b.raft_transport.set_endpoint(None);
    mesh_a.stop();
    mesh_b.stop();
}
