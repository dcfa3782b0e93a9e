//! A hybrid logical clock for `store.kv.crdt` writes.
//!
//! A stamp is wall-clock milliseconds shifted left 16 bits plus a counter.
//! It follows real time when clocks are sane. It never goes backwards on one
//! node, and it moves past every stamp the node has seen. So a write made
//! after reading another node's write always wins over it, even when this
//! node's wall clock lags behind.

/// Bits of the stamp that count writes within one millisecond.
const LOGICAL_BITS: u32 = 16;

/// One node's clock.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    last: u64,
}

impl Clock {
    /// A stamp for a new write at wall-clock `wall_ms`.
    pub(crate) fn tick(&mut self, wall_ms: u64) -> u64 {
        self.last = (wall_ms << LOGICAL_BITS).max(self.last + 1);
        self.last
    }

    /// Moves the clock past a stamp seen from another node or the disk.
    pub(crate) fn observe(&mut self, stamp: u64) {
        self.last = self.last.max(stamp);
    }
}

/// The wall-clock milliseconds a stamp was made at.
pub(crate) fn stamp_ms(stamp: u64) -> u64 {
    stamp >> LOGICAL_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_grow_and_pass_what_was_seen() {
        let mut c = Clock::default();
        let a = c.tick(1000);
        assert_eq!(stamp_ms(a), 1000);
        let b = c.tick(1000);
        assert!(b > a, "same millisecond: the counter moves");
        let c2 = c.tick(900);
        assert!(c2 > b, "a wall clock stepping back does not move the stamp back");
        c.observe(5000 << LOGICAL_BITS);
        let d = c.tick(1001);
        assert!(d > 5000 << LOGICAL_BITS, "a write after seeing a later stamp orders after it");
    }
}
