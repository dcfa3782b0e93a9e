//! What waits to be written to one peer, and the table of peers.
//!
//! Workers append under a short lock and then try to write the queue out
//! themselves through the peer's [`Link`]; the peer's writer task on the
//! mesh thread takes over when the socket is full, the link is busy or not
//! connected. A worker flushes its remote sends once per scheduling round,
//! so a burst of sends costs one lock, one frame and one `write`.
//!
//! Queues are bounded. Past the bound new items are dropped and counted
//! rather than blocking a worker: a worker that blocks stops every process
//! it runs, and a peer that cannot keep up is better shed at its queue than
//! allowed to stall the sender's node.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::stats::NodeStats;

use super::frame::Class;
use super::link::{Flush, Link};
use super::relay::RelayItem;

/// Relay items one peer may have waiting (about a second of traffic at the
/// measured throughput; beyond that the peer is not keeping up).
pub(crate) const MAX_RELAY_QUEUE: usize = 256 * 1024;
/// Frames of the other classes one peer may have waiting.
pub(crate) const MAX_FRAME_QUEUE: usize = 16 * 1024;

/// What the writer takes in one go.
#[derive(Default, Debug)]
pub(crate) struct Pending {
    /// Control, raft and pg frames, in order; written before relay items.
    pub(crate) frames: VecDeque<(Class, Vec<u8>)>,
    /// Process traffic, in send order.
    pub(crate) relay: Vec<RelayItem>,
}

/// The outgoing queue of one peer.
#[derive(Debug)]
pub(crate) struct PeerQueue {
    /// The peer's node name.
    pub(crate) name: String,
    pending: Mutex<Pending>,
    /// Poked when the writer task has work; it waits on it.
    pub(crate) notify: Notify,
    closed: AtomicBool,
    /// The connection's sending half while one is up.
    link: Mutex<Option<Link>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Link")
    }
}

impl PeerQueue {
    pub(crate) fn new(name: String) -> PeerQueue {
        PeerQueue {
            name,
            pending: Mutex::default(),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
            link: Mutex::new(None),
        }
    }

    /// Installs a freshly established connection.
    pub(crate) fn attach(&self, link: Link) {
        *self.link.lock().unwrap_or_else(|e| e.into_inner()) = Some(link);
    }

    /// Removes the connection (it broke or the peer is gone).
    pub(crate) fn detach(&self) -> Option<Link> {
        self.link.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Writes what is queued through the link, without blocking. With
    /// `wait` false a busy link is left alone. Returns what happened, or
    /// `None` when no connection is up or (without `wait`) the link is busy:
    /// then the writer task has to see to it.
    pub(crate) fn flush(&self, stats: &NodeStats, wait: bool) -> Option<Flush> {
        let mut guard = if wait {
            self.link.lock().unwrap_or_else(|e| e.into_inner())
        } else {
            match self.link.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return None,
            }
        };
        guard.as_mut().map(|link| link.flush(self, stats))
    }

    /// Called by a worker after queueing: writes at once when it can,
    /// otherwise wakes the writer task.
    pub(crate) fn kick(&self, stats: &NodeStats) {
        if !matches!(self.flush(stats, false), Some(Flush::Done)) {
            self.notify.notify_one();
        }
    }

    /// Appends relay items in order; returns how many did not fit.
    pub(crate) fn push_relay(&self, items: &mut Vec<RelayItem>) -> usize {
        let dropped = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let room = MAX_RELAY_QUEUE.saturating_sub(p.relay.len());
            let dropped = items.len().saturating_sub(room);
            items.truncate(items.len() - dropped);
            if p.relay.is_empty() {
                std::mem::swap(&mut p.relay, items);
            } else {
                p.relay.append(items);
            }
            dropped
        };
        items.clear();
        dropped
    }

    /// Appends one frame of another class; false when the queue is full.
    pub(crate) fn push_frame(&self, class: Class, payload: Vec<u8>) -> bool {
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.frames.len() >= MAX_FRAME_QUEUE {
                return false;
            }
            p.frames.push_back((class, payload));
        }
        self.notify.notify_one();
        true
    }

    /// Puts a frame ahead of everything queued (a connection's greeting).
    pub(crate) fn push_front_frame(&self, class: Class, payload: Vec<u8>) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).frames.push_front((class, payload));
        self.notify.notify_one();
    }

    /// Puts relay items that were taken but not written back in front of
    /// whatever was queued since, so a reconnect sends them first, in order.
    pub(crate) fn requeue_front(&self, mut items: Vec<RelayItem>) {
        if items.is_empty() {
            return;
        }
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        items.append(&mut p.relay);
        p.relay = items;
    }

    /// Takes everything queued.
    pub(crate) fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Marks the peer gone and returns what was still queued, so the
    /// caller can count it; the writer stops at its next look.
    pub(crate) fn close(&self) -> Pending {
        self.closed.store(true, Ordering::SeqCst);
        self.notify.notify_one();
        self.take()
    }

    /// Whether [`Self::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// The peers this node has queues for, by node name.
#[derive(Default)]
pub(crate) struct Peers {
    map: Mutex<HashMap<String, Arc<PeerQueue>>>,
}

impl Peers {
    /// The queue for `name`, created by `make` when there is none yet; the
    /// flag says whether it was created (the caller starts its writer).
    pub(crate) fn get_or_create(&self, name: &str) -> (Arc<PeerQueue>, bool) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(q) = map.get(name) {
            return (q.clone(), false);
        }
        let q = Arc::new(PeerQueue::new(name.to_string()));
        map.insert(name.to_string(), q.clone());
        (q, true)
    }

    /// Removes and closes the queue of `name`; returns what was queued.
    pub(crate) fn remove(&self, name: &str) -> Option<Pending> {
        let q = self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(name)?;
        Some(q.close())
    }

    /// Every queue, to tell all peers something.
    pub(crate) fn all(&self) -> Vec<Arc<PeerQueue>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Removes and closes every queue (node shutdown).
    pub(crate) fn clear(&self) {
        let all: Vec<_> = self.map.lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, q)| q).collect();
        for q in all {
            q.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mesh::relay::RelayMsg;
    use wippy_lua_stdlib::Value;

    fn item(i: i64) -> RelayItem {
        RelayItem::Message(RelayMsg {
            to: "{b@h|0x1}".into(),
            from: String::new(),
            topic: "t".into(),
            payload: Value::Int(i),
        })
    }

    #[test]
    fn appends_keep_order_across_batches() {
        let q = PeerQueue::new("b".into());
        let mut a = vec![item(1), item(2)];
        assert_eq!(q.push_relay(&mut a), 0);
        assert!(a.is_empty());
        let mut b = vec![item(3)];
        q.push_relay(&mut b);
        assert!(q.push_frame(Class::Raft, vec![9]));
        let p = q.take();
        assert_eq!(p.relay, vec![item(1), item(2), item(3)]);
        assert_eq!(p.frames, VecDeque::from([(Class::Raft, vec![9])]));
        let rest = q.take();
        assert!(rest.relay.is_empty() && rest.frames.is_empty());
    }

    #[test]
    fn requeued_items_go_first() {
        let q = PeerQueue::new("b".into());
        q.push_relay(&mut vec![item(3)]);
        q.requeue_front(vec![item(1), item(2)]);
        assert_eq!(q.take().relay, vec![item(1), item(2), item(3)]);
    }

    #[test]
    fn a_full_queue_drops_the_newest_and_says_how_many() {
        let q = PeerQueue::new("b".into());
        let mut big: Vec<_> = (0..MAX_RELAY_QUEUE as i64 - 1).map(item).collect();
        assert_eq!(q.push_relay(&mut big), 0);
        let mut more = vec![item(-1), item(-2), item(-3)];
        assert_eq!(q.push_relay(&mut more), 2);
        let p = q.take();
        assert_eq!(p.relay.len(), MAX_RELAY_QUEUE);
        assert_eq!(p.relay.last(), Some(&item(-1)));
    }

    #[test]
    fn closing_hands_back_what_was_queued() {
        let peers = Peers::default();
        let (q, created) = peers.get_or_create("b");
        assert!(created);
        assert!(!peers.get_or_create("b").1);
        q.push_relay(&mut vec![item(1)]);
        let left = peers.remove("b").unwrap();
        assert_eq!(left.relay, vec![item(1)]);
        assert!(q.is_closed());
        assert!(peers.remove("b").is_none());
        assert!(peers.get_or_create("b").1, "a new queue after removal");
    }
}
