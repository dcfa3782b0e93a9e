//! Raft calls between two meshes on real loopback sockets: answers find
//! their callers, a node without a Raft instance answers with an error, a
//! call to a node that is not a member fails at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::Vote;
use openraft::network::RPCOption;
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::{RaftNetworkFactory, RaftNetworkV2};

use super::network::MeshNetwork;
use super::rpc::{Answer, Call};
use super::test_cluster::{TestNode, set_views};
use super::transport::{CallFuture, Endpoint};
use super::types::{RaftNode, TypeConfig, node_id};

/// Grants every vote and says who it is in the response's vote.
struct Granting(u64);

impl Endpoint for Granting {
    fn answer(&self, _from: &str, call: Call) -> CallFuture {
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

#[test]
fn votes_cross_the_mesh_and_come_back() {
    let (mut na, mut nb) = (TestNode::start("a"), TestNode::start("b"));
    set_views(&[&na, &nb]);
    let (a, b, addr_b) = (na.shared.clone(), nb.shared.clone(), nb.addr);
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
    na.stop_mesh();
    nb.stop_mesh();
}
