//! How process traffic finds other nodes, and what happens when one goes.
//!
//! Workers hand items for other nodes to [`Shared::relay`] once per
//! scheduling round; the mesh hands what arrives to
//! [`Shared::deliver_remote`], which turns it back into envelopes for the
//! owning workers. When gossip declares a node down, [`Shared::node_down`]
//! drops its queue and tells every worker, which fires the monitors and
//! links that pointed at it.

use std::net::SocketAddr;
use std::time::Instant;

use std::sync::atomic::Ordering;

use super::mesh::control::Control;
use super::mesh::frame::Class;
use super::mesh::relay::RelayItem;
use crate::pid::node_and_counter;
use crate::scheduler::envelope::Envelope;
use crate::shared::{ClosedPeer, PeerRaft, Shared};

/// The error text monitors and links see when a node goes away.
pub(crate) const NODE_DOWN: &str = "node disconnected";

/// The node is not a live member (or this node runs no mesh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unreachable;

impl Shared {
    /// The mesh address of a live member called `name`.
    pub(crate) fn member_internode(&self, name: &str) -> Option<SocketAddr> {
        self.member_link(name).map(|(addr, _)| addr)
    }

    /// The mesh address and generation of a live member called `name`.
    pub(crate) fn member_link(&self, name: &str) -> Option<(SocketAddr, u64)> {
        let view = self.cluster.read().unwrap_or_else(|e| e.into_inner());
        view.as_ref()?
            .iter()
            .find(|m| !m.is_local && m.state.is_up() && m.name == name)
            .map(|m| (m.internode, m.generation))
    }

    /// This node's status frame (see `mesh/control.rs`).
    pub(crate) fn status_frame(&self) -> Vec<u8> {
        let raft_cluster = self.raft_cluster.read().unwrap_or_else(|e| e.into_inner()).clone();
        Control::Status { raft_member: self.raft_member.load(Ordering::SeqCst), raft_cluster }.encode()
    }

    /// Records that this node now belongs (or no longer belongs) to a
    /// formed Raft cluster and tells every peer.
    pub(crate) fn set_raft_member(&self, member: bool, cluster: Option<String>) {
        let same_cluster = {
            let mut known = self.raft_cluster.write().unwrap_or_else(|e| e.into_inner());
            let same = *known == cluster;
            *known = cluster;
            same
        };
        if self.raft_member.swap(member, Ordering::SeqCst) == member && same_cluster {
            return;
        }
        let frame = self.status_frame();
        for queue in self.peers.all() {
            queue.push_frame(Class::Control, frame.clone());
        }
    }

    /// What `peer` last said about itself.
    pub(crate) fn set_peer_status(&self, peer: &str, status: PeerRaft) {
        self.peer_status.lock().unwrap_or_else(|e| e.into_inner()).insert(peer.to_string(), status);
    }

    /// Live members that belong to a formed Raft cluster other than this
    /// node's, with that cluster's id: nodes that bootstrapped on their own
    /// (started apart, without `bootstrap_expect` naming the initial size).
    /// Two Raft clusters never merge; an operator has to be told.
    pub(crate) fn foreign_raft_members(&self) -> Vec<(String, String)> {
        let ours = self.raft_cluster.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(ours) = ours.filter(|_| self.raft_member.load(Ordering::SeqCst)) else { return Vec::new() };
        let status = self.peer_status.lock().unwrap_or_else(|e| e.into_inner());
        let mut foreign: Vec<(String, String)> = status
            .iter()
            .filter(|(name, s)| s.member && self.member_internode(name).is_some())
            .filter_map(|(name, s)| s.cluster.clone().filter(|c| *c != ours).map(|c| (name.clone(), c)))
            .collect();
        foreign.sort();
        foreign
    }

    /// Whether any live member said it belongs to a formed Raft cluster.
    pub(crate) fn raft_cluster_visible(&self) -> bool {
        let status = self.peer_status.lock().unwrap_or_else(|e| e.into_inner());
        status.iter().any(|(name, s)| s.member && self.member_internode(name).is_some())
    }

    /// The mesh saw `name`'s process (of `generation`) close a connection
    /// it had made or accepted at `since`.
    pub(crate) fn peer_closed(&self, name: &str, generation: u64, since: Instant) {
        let closed = ClosedPeer { name: name.to_string(), generation, since };
        self.closed_peers.lock().unwrap_or_else(|e| e.into_inner()).push(closed);
    }

    /// Opens the mesh connection to a member that just joined, so that
    /// the first message does not wait for a handshake and a crash of its
    /// process is noticed through the connection closing.
    pub(crate) fn connect(&self, node: &str) {
        let _ = self.peer_queue(node);
    }

    /// The queue of `node`, created (with its writer) on first use.
    pub(crate) fn peer_queue(
        &self,
        node: &str,
    ) -> Result<std::sync::Arc<super::mesh::outbound::PeerQueue>, Unreachable> {
        if self.member_internode(node).is_none() {
            return Err(Unreachable);
        }
        let (queue, created) = self.peers.get_or_create(node);
        if created {
            let mesh = self.mesh.lock().unwrap_or_else(|e| e.into_inner());
            match mesh.as_ref() {
                Some(spawner) => spawner.start_peer(queue.clone()),
                None => {
                    drop(mesh);
                    self.peers.remove(node);
                    return Err(Unreachable);
                }
            }
        }
        Ok(queue)
    }

    /// Queues `items` (emptied) for node `node`, starting its writer when
    /// this is the first traffic for it. Items past the queue bound are
    /// dropped and counted.
    pub(crate) fn relay(&self, node: &str, items: &mut Vec<RelayItem>) -> Result<(), Unreachable> {
        let queue = self.peer_queue(node)?;
        let dropped = queue.push_relay(items);
        queue.kick(&self.stats);
        if dropped > 0 {
            self.stats.drop_items(Class::Relay, dropped);
            tracing::warn!(peer = %node, dropped, "mesh: peer queue full; messages dropped");
        }
        Ok(())
    }

    /// Routes items that arrived from `peer` to the workers owning their
    /// targets, one batch per worker, in arrival order. Items for another
    /// node or an unreadable pid are dropped and counted.
    pub(crate) fn deliver_remote(&self, peer: &str, items: Vec<RelayItem>) {
        let mut per_worker: Vec<Vec<Envelope>> = (0..self.n_workers()).map(|_| Vec::new()).collect();
        for item in items {
            let to = match &item {
                RelayItem::Message(m) => &m.to,
                RelayItem::Event { to, .. } | RelayItem::Watch { to, .. } | RelayItem::Kill { to, .. } => to,
            };
            let counter = match node_and_counter(to) {
                Some((node, counter)) if node == self.node_id => counter,
                _ => {
                    tracing::debug!(%peer, to = %to, "mesh: item for a pid not on this node dropped");
                    self.stats.drop_items(Class::Relay, 1);
                    continue;
                }
            };
            let env = match item {
                RelayItem::Message(m) => {
                    Envelope::Message { to: counter, to_pid: m.to, from: m.from, topic: m.topic, payload: m.payload }
                }
                RelayItem::Event { from, kind, result, reason, .. } => {
                    Envelope::Event { to: counter, kind, from, result, reason }
                }
                RelayItem::Watch { to, from, link, on } => Envelope::Watch { to: counter, to_pid: to, from, link, on },
                RelayItem::Kill { reason, .. } => Envelope::Kill { to: counter, reason },
            };
            per_worker[self.worker_of(counter)].push(env);
        }
        for (w, mut batch) in per_worker.into_iter().enumerate() {
            self.workers[w].mailroom.post(&mut batch);
        }
    }

    /// Gossip declared `name` down (dead or departed): drop what was queued
    /// for it and let every worker fire the monitors and links that point
    /// at its processes.
    pub(crate) fn node_down(&self, name: &str) {
        self.peer_status.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        self.raft_transport.peer_down(name);
        self.replica_node_down(name);
        if let Some(left) = self.peers.remove(name) {
            let n = left.relay.len();
            if n > 0 {
                self.stats.drop_items(Class::Relay, n);
                tracing::debug!(peer = %name, dropped = n, "mesh: queued traffic for a node that went down dropped");
            }
        }
        for w in 0..self.n_workers() {
            self.post(w, Envelope::NodeDown { node: name.to_string() });
        }
    }
}
