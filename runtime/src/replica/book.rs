//! How a node keeps its copy of another node's state in step with the
//! owner: which incoming snapshot or change to take, which to skip, and
//! when to ask the owner for a fresh snapshot.
//!
//! The owner numbers its changes. A copy remembers the owner's incarnation
//! (`generation`, its start time) and the number of the last change it
//! holds. A change that is next in line is applied; an old one is skipped
//! (it arrived twice, or a snapshot already covered it); one past a gap,
//! or from an incarnation the copy does not hold, means something was lost
//! and the owner is asked for a snapshot. Snapshots replace the copy when
//! they are at least as new. Copies of departed owners are dropped whole,
//! so a restarted owner starts clean.

/// Where a copy of an owner's state stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    /// The owner's incarnation.
    pub generation: u64,
    /// The number of the last change applied.
    pub seq: u64,
}

/// What to do with something an owner sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Take it.
    Apply,
    /// Already covered; drop it.
    Skip,
    /// Something is missing; ask the owner for a snapshot.
    Pull,
}

/// A change numbered `seq` from incarnation `generation` arrived.
pub(crate) fn on_change(held: Option<Position>, generation: u64, seq: u64) -> Verdict {
    match held {
        Some(h) if h.generation == generation && seq == h.seq + 1 => Verdict::Apply,
        Some(h) if h.generation == generation && seq <= h.seq => Verdict::Skip,
        // An older incarnation's traffic, still in flight after a restart.
        Some(h) if generation < h.generation => Verdict::Skip,
        _ => Verdict::Pull,
    }
}

/// A snapshot as of change `seq` of incarnation `generation` arrived.
pub(crate) fn on_snapshot(held: Option<Position>, generation: u64, seq: u64) -> Verdict {
    match held {
        Some(h) if h.generation == generation && seq < h.seq => Verdict::Skip,
        Some(h) if generation < h.generation => Verdict::Skip,
        _ => Verdict::Apply,
    }
}

/// The owner says it is at change `seq` of `generation` (anti-entropy).
pub(crate) fn on_digest(held: Option<Position>, generation: u64, seq: u64) -> Verdict {
    match held {
        Some(h) if h.generation == generation && h.seq == seq => Verdict::Skip,
        Some(h) if generation < h.generation => Verdict::Skip,
        _ => Verdict::Pull,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT_5: Option<Position> = Some(Position { generation: 10, seq: 5 });

    #[test]
    fn changes_apply_in_order_and_gaps_ask_for_a_snapshot() {
        assert_eq!(on_change(AT_5, 10, 6), Verdict::Apply);
        assert_eq!(on_change(AT_5, 10, 5), Verdict::Skip);
        assert_eq!(on_change(AT_5, 10, 2), Verdict::Skip);
        assert_eq!(on_change(AT_5, 10, 7), Verdict::Pull, "change 6 was lost");
        assert_eq!(on_change(None, 10, 1), Verdict::Pull, "nothing held: the base is missing");
        assert_eq!(on_change(AT_5, 11, 1), Verdict::Pull, "a restarted owner");
        assert_eq!(on_change(AT_5, 9, 8), Verdict::Skip, "an old incarnation's late traffic");
    }

    #[test]
    fn snapshots_replace_unless_older() {
        assert_eq!(on_snapshot(AT_5, 10, 5), Verdict::Apply, "equal is harmless and heals a diverged copy");
        assert_eq!(on_snapshot(AT_5, 10, 9), Verdict::Apply);
        assert_eq!(on_snapshot(AT_5, 10, 4), Verdict::Skip);
        assert_eq!(on_snapshot(AT_5, 11, 0), Verdict::Apply);
        assert_eq!(on_snapshot(AT_5, 9, 100), Verdict::Skip);
        assert_eq!(on_snapshot(None, 1, 0), Verdict::Apply);
    }

    #[test]
    fn digests_pull_only_when_behind_or_different() {
        assert_eq!(on_digest(AT_5, 10, 5), Verdict::Skip);
        assert_eq!(on_digest(AT_5, 10, 6), Verdict::Pull);
        assert_eq!(on_digest(AT_5, 10, 4), Verdict::Pull, "the copy is ahead of its owner: rebuild it");
        assert_eq!(on_digest(None, 10, 0), Verdict::Pull);
        assert_eq!(on_digest(AT_5, 9, 5), Verdict::Skip);
    }
}
