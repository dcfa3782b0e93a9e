//! A worker's timer heap. Pure: the caller passes the current time in.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Kernel timers (`time.after`, `time.sleep`) of one worker.
#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Timers {
    /// Schedules timer `id` at `at`.
    pub(super) fn add(&mut self, at: Instant, id: u64) {
        self.heap.push(Reverse((at, id)));
    }

    /// Removes and returns the ids due at `now`, earliest first.
    pub(super) fn due(&mut self, now: Instant, out: &mut Vec<u64>) {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            out.push(id);
        }
    }

    /// Time until the next timer, if any.
    pub(super) fn next_in(&self, now: Instant) -> Option<Duration> {
        self.heap.peek().map(|Reverse((at, _))| at.saturating_duration_since(now))
    }

    /// Whether no timer is pending.
    pub(super) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.add(t0 + Duration::from_millis(30), 3);
        t.add(t0 + Duration::from_millis(10), 1);
        t.add(t0 + Duration::from_millis(20), 2);
        let mut out = Vec::new();
        t.due(t0 + Duration::from_millis(5), &mut out);
        assert!(out.is_empty());
        assert_eq!(t.next_in(t0), Some(Duration::from_millis(10)));
        t.due(t0 + Duration::from_millis(25), &mut out);
        assert_eq!(out, vec![1, 2]);
        assert!(!t.is_empty());
    }
}
