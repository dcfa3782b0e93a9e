//! Counters the node's threads bump and `/metrics` reads.
//!
//! Hot paths only touch plain atomics; the admin thread copies them into
//! the Prometheus registry at each scrape, so a busy mesh never takes the
//! registry's locks.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::cluster::mesh::frame::Class;

/// Per-class traffic counters of the mesh.
#[derive(Default)]
pub(crate) struct ClassCounters {
    /// Frames written to peers.
    pub(crate) frames_sent: AtomicU64,
    /// Payload bytes written to peers (before encryption).
    pub(crate) bytes_sent: AtomicU64,
    /// Frames read from peers.
    pub(crate) frames_received: AtomicU64,
    /// Payload bytes read from peers.
    pub(crate) bytes_received: AtomicU64,
    /// Items dropped: a full queue, a peer that went down with traffic
    /// still queued, a write that failed mid-batch.
    pub(crate) dropped: AtomicU64,
}

/// Everything counted outside the scheduler.
pub(crate) struct NodeStats {
    /// Seconds from a node's start until this node heard of it.
    pub(crate) convergence: Histogram,
    /// Mesh traffic, indexed by `Class as usize`.
    pub(crate) mesh: [ClassCounters; 4],
    /// Mesh connections refused or failed during the handshake.
    pub(crate) handshake_failures: AtomicU64,
    /// 0 follower (or not running), 1 candidate, 2 leader.
    pub(crate) raft_state: AtomicU64,
    /// The current Raft term.
    pub(crate) raft_term: AtomicU64,
    /// Voters in the Raft configuration.
    pub(crate) raft_voters: AtomicU64,
    /// Learners (standbys) in the Raft configuration.
    pub(crate) raft_non_voters: AtomicU64,
    /// Times this node saw the leader change.
    pub(crate) raft_leader_changes: AtomicU64,
    /// Bursts of voter changes this node made as leader (see `raft/churn.rs`).
    pub(crate) raft_churn_bursts: AtomicU64,
}

impl Default for NodeStats {
    fn default() -> Self {
        NodeStats {
            // 10 ms to about 40 s.
            convergence: Histogram::new(exponential_buckets(0.01, 2.0, 13)),
            mesh: Default::default(),
            handshake_failures: AtomicU64::new(0),
            raft_state: AtomicU64::new(0),
            raft_term: AtomicU64::new(0),
            raft_voters: AtomicU64::new(0),
            raft_non_voters: AtomicU64::new(0),
            raft_leader_changes: AtomicU64::new(0),
            raft_churn_bursts: AtomicU64::new(0),
        }
    }
}

impl NodeStats {
    /// The counters of one class.
    pub(crate) fn class(&self, class: Class) -> &ClassCounters {
        &self.mesh[class as usize]
    }

    /// Counts `n` items of `class` dropped.
    pub(crate) fn drop_items(&self, class: Class, n: usize) {
        self.class(class).dropped.fetch_add(n as u64, Ordering::Relaxed);
    }
}
