//! The gossip health check behind `/livez`.
//!
//! A clustered node is unhealthy when it has been cut off from every other
//! member for longer than the isolation grace (it has seeds, so it is meant
//! to be in a cluster), or when other members keep declaring it down (three
//! times within a minute: it stalls long enough to be thought dead, over and
//! over). Nothing fails during the first grace period after start, so a node
//! that is still finding its seeds, or rejoining after a restart, is not
//! killed by its supervisor before it had a chance.
//!
//! Time is passed in, so the rules are tested without waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back "declared down" verdicts are counted.
const FLAP_WINDOW: Duration = Duration::from_secs(60);
/// Verdicts within the window that make the node unhealthy.
const FLAP_LIMIT: usize = 3;

/// The state the check needs.
#[derive(Debug)]
pub(crate) struct Health {
    started: Instant,
    grace: Duration,
    has_seeds: bool,
    alone_since: Option<Instant>,
    downs: VecDeque<Instant>,
}

impl Health {
    pub(crate) fn new(now: Instant, grace: Duration, has_seeds: bool) -> Health {
        Health { started: now, grace, has_seeds, alone_since: Some(now), downs: VecDeque::new() }
    }

    /// Records how many other members are up right now.
    pub(crate) fn members(&mut self, now: Instant, others_up: usize) {
        match (others_up, self.alone_since) {
            (0, None) => self.alone_since = Some(now),
            (n, Some(_)) if n > 0 => self.alone_since = None,
            _ => {}
        }
    }

    /// Records that the cluster declared this node down.
    pub(crate) fn declared_down(&mut self, now: Instant) {
        self.downs.push_back(now);
    }

    /// `None` when healthy, otherwise why not; and the score (0 is best):
    /// one point while isolated past the grace, one per recent verdict.
    pub(crate) fn check(&mut self, now: Instant) -> (Option<String>, u64) {
        while self.downs.front().is_some_and(|t| now.duration_since(*t) > FLAP_WINDOW) {
            self.downs.pop_front();
        }
        let isolated = self.has_seeds
            && self.alone_since.is_some_and(|t| now.duration_since(t) >= self.grace)
            && now.duration_since(self.started) >= self.grace;
        let score = u64::from(isolated) + self.downs.len() as u64;
        if now.duration_since(self.started) < self.grace {
            return (None, score);
        }
        if isolated {
            let secs = self.alone_since.map_or(0, |t| now.duration_since(t).as_secs());
            return (Some(format!("gossip: no other member reachable for {secs} s")), score);
        }
        if self.downs.len() >= FLAP_LIMIT {
            let n = self.downs.len();
            return (Some(format!("gossip: declared down by the cluster {n} times in the last minute")), score);
        }
        (None, score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn isolation_fails_only_after_the_grace() {
        let t0 = Instant::now();
        let mut h = Health::new(t0, 10 * S, true);
        assert_eq!(h.check(t0 + 9 * S).0, None, "boot grace");
        assert!(h.check(t0 + 10 * S).0.unwrap().contains("no other member reachable for 10 s"));
        h.members(t0 + 11 * S, 2);
        assert_eq!(h.check(t0 + 12 * S), (None, 0));
        h.members(t0 + 20 * S, 0);
        assert_eq!(h.check(t0 + 29 * S).0, None, "alone for less than the grace");
        assert_eq!(h.check(t0 + 30 * S).1, 1);
    }

    #[test]
    fn a_node_without_seeds_may_be_alone() {
        let t0 = Instant::now();
        let mut h = Health::new(t0, S, false);
        assert_eq!(h.check(t0 + 100 * S), (None, 0));
    }

    #[test]
    fn repeated_down_verdicts_fail_until_they_age_out() {
        let t0 = Instant::now();
        let mut h = Health::new(t0, S, true);
        h.members(t0, 1);
        for i in 0..3 {
            h.declared_down(t0 + (2 + i) * S);
        }
        let (why, score) = h.check(t0 + 5 * S);
        assert!(why.unwrap().contains("3 times"));
        assert_eq!(score, 3);
        assert_eq!(h.check(t0 + 63 * S).0, None, "the first verdict aged out");
    }
}
