//! When a fresh cluster forms its first Raft configuration, and with whom.
//!
//! `bootstrap_expect = N` means: wait until N eligible nodes that have not
//! joined a Raft cluster yet are visible in gossip, and the set has stayed
//! the same for a stability window, then every node computes the same
//! voter set from it (the ranking of `roles.rs`) and those voters
//! initialize Raft with that identical membership. openraft accepts the
//! same initial membership from several nodes; different ones could split
//! the cluster, which is what the window and the deterministic ranking are
//! for. A node that sees any member already in a Raft cluster never
//! bootstraps: it waits for the leader's reconciler to add it. 0 never
//! bootstraps (the node waits to be added). 1 bootstraps alone, but only
//! on a node without seeds (`join_addrs`, or admitted peers): a node told to join others is
//! joining a cluster, and bootstrapping alone at the same moment as its
//! seed would make two clusters that can never merge.
//!
//! Time is passed in; nothing here reads a clock.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::roles::{Candidate, choose};

/// What the node should do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Keep watching.
    Wait,
    /// Initialize Raft with exactly these voters (this node is one).
    Initialize(BTreeSet<u64>),
    /// Do not bootstrap: the cluster exists, or this node is not among
    /// the chosen voters; the leader will add it.
    Join,
}

/// Watches the gossip view until bootstrap can be decided.
#[derive(Debug)]
pub(crate) struct Bootstrap {
    me: u64,
    expect: usize,
    max_voters: usize,
    window: Duration,
    has_seeds: bool,
    seen: BTreeSet<u64>,
    since: Option<Instant>,
}

impl Bootstrap {
    pub(crate) fn new(me: u64, expect: usize, max_voters: usize, window: Duration, has_seeds: bool) -> Bootstrap {
        Bootstrap { me, expect, max_voters, window, has_seeds, seen: BTreeSet::new(), since: None }
    }

    /// Feeds one look at the cluster: the eligible nodes that have not
    /// joined a Raft cluster (this node included), and whether any member
    /// already belongs to one.
    pub(crate) fn observe(&mut self, now: Instant, fresh: &[Candidate], cluster_exists: bool) -> Decision {
        if cluster_exists || self.expect == 0 {
            return Decision::Join;
        }
        if self.expect == 1 {
            return if self.has_seeds { Decision::Join } else { Decision::Initialize(BTreeSet::from([self.me])) };
        }
        let ids: BTreeSet<u64> = fresh.iter().filter(|c| c.eligible).map(|c| c.id).collect();
        if ids != self.seen {
            self.seen = ids;
            self.since = Some(now);
            return Decision::Wait;
        }
        let stable = self.since.is_some_and(|t| now.duration_since(t) >= self.window);
        if self.seen.len() < self.expect || !stable {
            return Decision::Wait;
        }
        let voters = choose(fresh, self.max_voters.min(self.expect), 0).voters;
        if voters.contains(&self.me) { Decision::Initialize(voters) } else { Decision::Join }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::roles::Seat;

    const W: Duration = Duration::from_secs(2);

    fn c(id: u64) -> Candidate {
        Candidate { id, eligible: true, priority: 0, failure_domain: String::new(), seat: Seat::None }
    }

    #[test]
    fn one_bootstraps_alone_and_zero_never() {
        let t = Instant::now();
        let alone = |expect, seeds| Bootstrap::new(7, expect, 5, W, seeds);
        assert_eq!(alone(1, false).observe(t, &[c(7)], false), Decision::Initialize(BTreeSet::from([7])));
        assert_eq!(alone(0, false).observe(t, &[c(7), c(8)], false), Decision::Join);
        assert_eq!(alone(1, false).observe(t, &[c(7)], true), Decision::Join, "a cluster exists");
        assert_eq!(alone(1, true).observe(t, &[c(7)], false), Decision::Join, "a node with seeds joins");
    }

    #[test]
    fn three_wait_for_a_stable_view_then_agree() {
        let t = Instant::now();
        let view = [c(3), c(1), c(2)];
        let mut nodes: Vec<Bootstrap> = [1, 2, 3].iter().map(|&me| Bootstrap::new(me, 3, 5, W, true)).collect();
        for n in &mut nodes {
            assert_eq!(n.observe(t, &view[..2], false), Decision::Wait, "two of three");
            assert_eq!(n.observe(t + W, &view, false), Decision::Wait, "the view just changed");
            assert_eq!(n.observe(t + W + W / 2, &view, false), Decision::Wait, "not stable long enough");
        }
        let all = BTreeSet::from([1, 2, 3]);
        for n in &mut nodes {
            assert_eq!(n.observe(t + W * 2, &view, false), Decision::Initialize(all.clone()));
        }
    }

    #[test]
    fn more_nodes_than_expected_pick_the_same_best_ones() {
        let t = Instant::now();
        let view: Vec<Candidate> = (1..=5).map(c).collect();
        let decide = |me| {
            let mut b = Bootstrap::new(me, 3, 5, W, true);
            b.observe(t, &view, false);
            b.observe(t + W, &view, false)
        };
        assert_eq!(decide(1), Decision::Initialize(BTreeSet::from([1, 2, 3])));
        assert_eq!(decide(3), Decision::Initialize(BTreeSet::from([1, 2, 3])));
        assert_eq!(decide(5), Decision::Join, "ranked out: waits to be added");
    }

    #[test]
    fn ineligible_nodes_do_not_count() {
        let t = Instant::now();
        let mut b = Bootstrap::new(1, 3, 5, W, true);
        let view = [c(1), c(2), Candidate { eligible: false, ..c(3) }];
        b.observe(t, &view, false);
        assert_eq!(b.observe(t + W * 3, &view, false), Decision::Wait);
    }
}
