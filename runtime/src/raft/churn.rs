//! Counting bursts of voter changes for `raft_voter_churn_burst_total`.
//!
//! One voter change is routine (a node left, a standby stepped up). Several
//! within a minute mean something keeps moving seats around: nodes
//! flapping, a failure domain coming and going, a priority fight. Each such
//! burst counts once, so the counter moves only when an operator should
//! look. Time is passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Voter changes within [`WINDOW`] that make a burst.
const LIMIT: usize = 3;
/// How far back changes are counted.
const WINDOW: Duration = Duration::from_secs(60);

/// Recent voter changes.
#[derive(Debug, Default)]
pub(crate) struct Churn {
    changes: VecDeque<Instant>,
}

impl Churn {
    /// Records one voter change; true when it completes a new burst.
    pub(crate) fn record(&mut self, now: Instant) -> bool {
        while self.changes.front().is_some_and(|t| now.duration_since(*t) > WINDOW) {
            self.changes.pop_front();
        }
        self.changes.push_back(now);
        if self.changes.len() >= LIMIT {
            // The burst is counted; its changes do not count towards the next.
            self.changes.clear();
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_changes_in_a_minute_make_one_burst() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Churn::default();
        assert!(!c.record(t));
        assert!(!c.record(t + 10 * s));
        assert!(c.record(t + 20 * s));
        assert!(!c.record(t + 21 * s), "a new burst needs three new changes");
        assert!(!c.record(t + 30 * s));
        assert!(!c.record(t + 100 * s), "the earlier two aged out");
    }
}
