//! Raft calls between nodes over the mesh: outstanding calls waiting for
//! their answers, and the local Raft instance answering calls from peers.
//!
//! The caller registers a call id and a one-shot slot, queues the request
//! as a `raft` frame to the callee and waits; the callee's mesh reader
//! hands the request to the local Raft instance on a task of the mesh
//! thread and queues the answer back as a `raft` frame to the caller, whose
//! mesh reader fills the slot. The mesh keeps `raft` frames ahead of relay
//! traffic, so a burst of process messages does not delay a heartbeat.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::rpc::{self, Answer, Call, Wire};
use crate::cluster::mesh::frame::Class;
use crate::shared::Shared;

/// The answer to one call, or the callee's error text.
pub(crate) type CallResult = Result<Answer, String>;

/// A boxed future of a call's answer.
pub(crate) type CallFuture = Pin<Box<dyn Future<Output = CallResult> + Send>>;

/// Why a call got no answer.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The target is not a reachable member, or its queue is full.
    Unreachable(String),
    /// No answer within the time allowed.
    Timeout(Duration),
    /// The target answered with an error.
    Remote(String),
}

/// The local Raft instance as the transport sees it: something that
/// answers calls. Kept as a trait so the transport does not depend on the
/// storage types behind the instance.
pub(crate) trait Endpoint: Send + Sync {
    /// Answers one call from peer `from`.
    fn answer(&self, from: &str, call: Call) -> CallFuture;
}

/// Outstanding calls and the local endpoint. One per node, in [`Shared`].
#[derive(Default)]
pub(crate) struct Transport {
    /// When a leader last replicated to (or heartbeated) this node.
    last_append: Mutex<Option<std::time::Instant>>,
    next: AtomicU64,
    /// Calls waiting for an answer: the callee's name and the slot.
    waiting: Mutex<HashMap<u64, (String, oneshot::Sender<CallResult>)>>,
    endpoint: Mutex<Option<Arc<dyn Endpoint>>>,
}

impl Transport {
    /// Installs (or with `None`, removes) the local Raft instance. Calls
    /// that arrive without one are answered with an error, so the caller
    /// backs off instead of timing out.
    pub(crate) fn set_endpoint(&self, endpoint: Option<Arc<dyn Endpoint>>) {
        *self.endpoint.lock().unwrap_or_else(|e| e.into_inner()) = endpoint;
    }

    /// When a leader last reached this node with an append or heartbeat.
    pub(crate) fn last_leader_contact(&self) -> Option<std::time::Instant> {
        *self.last_append.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new call to `to`; returns its id and where its answer lands.
    fn register(&self, to: &str) -> (u64, oneshot::Receiver<CallResult>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(id, (to.to_owned(), tx));
        (id, rx)
    }

    /// Node `name` went down: its calls will never be answered, so they
    /// fail now instead of at their deadline (a client then tries the next
    /// leader at once).
    pub(crate) fn peer_down(&self, name: &str) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<u64> = waiting.iter().filter(|(_, (to, _))| to == name).map(|(id, _)| *id).collect();
        for id in gone {
            if let Some((_, tx)) = waiting.remove(&id) {
                let _ = tx.send(Err(format!("node {name} went down before answering")));
            }
        }
    }

    /// Gives up on call `id` (it timed out).
    fn forget(&self, id: u64) {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// Sends `call` from this node (`from`) to node `to` and waits up to
    /// `ttl` for the answer.
    pub(crate) async fn call(
        &self,
        shared: &Shared,
        to: &str,
        from: &str,
        call: Call,
        ttl: Duration,
    ) -> Result<Answer, CallError> {
        let (id, rx) = self.register(to);
        if let Err(e) = shared.send_raft(to, &Wire::Request { id, from: from.to_owned(), call }) {
            self.forget(id);
            return Err(CallError::Unreachable(e));
        }
        match tokio::time::timeout(ttl, rx).await {
            Ok(Ok(Ok(answer))) => Ok(answer),
            Ok(Ok(Err(remote))) => Err(CallError::Remote(remote)),
            Ok(Err(_)) => Err(CallError::Unreachable("call abandoned".into())),
            Err(_) => {
                self.forget(id);
                Err(CallError::Timeout(ttl))
            }
        }
    }

    /// Handles one `raft` frame from `peer`. Requests are answered on a
    /// task spawned with `spawn`; replies fill their waiting slot (late
    /// ones, for calls already given up, are dropped).
    pub(crate) fn inbound(
        &self,
        shared: &Arc<Shared>,
        peer: &str,
        payload: &[u8],
        spawn: impl FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>),
    ) {
        match rpc::decode(payload) {
            Ok(Wire::Reply { id, result }) => {
                let slot = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                if let Some((_, tx)) = slot {
                    let _ = tx.send(result);
                }
            }
            Ok(Wire::Request { id, from, call }) => {
                if matches!(call, Call::Append(_)) {
                    *self.last_append.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
                }
                // Every node answers name reservations, Raft member or not.
                if let Call::Reserve { name, pid, ttl_ms, release } = &call {
                    let answer = crate::naming::strong::on_reserve(shared, name, pid, *ttl_ms, *release);
                    if let Err(e) = shared.send_raft(&from, &Wire::Reply { id, result: Ok(Answer::Reserved(answer)) }) {
                        tracing::debug!(peer = %from, error = %e, "raft: cannot answer a reservation");
                    }
                    return;
                }
                let endpoint = self.endpoint.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let shared = shared.clone();
                spawn(Box::pin(async move {
                    let result = match endpoint {
                        Some(e) => e.answer(&from, call).await,
                        None => Err("raft is not running on this node".to_owned()),
                    };
                    if let Err(e) = shared.send_raft(&from, &Wire::Reply { id, result }) {
                        tracing::debug!(peer = %from, error = %e, "raft: cannot answer");
                    }
                }));
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "raft: undecodable frame dropped");
                shared.stats.drop_items(Class::Raft, 1);
            }
        }
    }
}

impl Shared {
    /// Queues a raft frame for node `to`.
    pub(crate) fn send_raft(&self, to: &str, wire: &Wire) -> Result<(), String> {
        let bytes = rpc::encode(wire)?;
        let queue = self.peer_queue(to).map_err(|_| format!("node {to} is not a reachable member"))?;
        if queue.push_frame(Class::Raft, bytes) {
            Ok(())
        } else {
            self.stats.drop_items(Class::Raft, 1);
            Err(format!("the raft queue to {to} is full"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_to_a_node_that_went_down_fail_at_once() {
        let t = Transport::default();
        let (_, mut to_b) = t.register("b");
        let (_, mut to_c) = t.register("c");
        t.peer_down("b");
        assert!(matches!(to_b.try_recv(), Ok(Err(e)) if e == "node b went down before answering"));
        assert!(to_c.try_recv().is_err(), "calls to other nodes keep waiting");
        t.peer_down("c");
        assert!(to_c.try_recv().is_ok());
    }
}
