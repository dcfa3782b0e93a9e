//! Which owned records (locks, CONSISTENT names) belong to an incarnation
//! that is gone, judged from this node's gossip view, and when the leader
//! may remove them.
//!
//! An owner is `node#generation` ([`owner_id`](super::upkeep::owner_id)).
//! Its records go when the view shows that incarnation has ended: the node
//! appears under a newer generation (it restarted or rejoined), that very
//! incarnation is dead or has left, or the node has been forgotten. A view
//! that only knows an older generation of the node is behind the owner, not
//! ahead of it. The leader may itself have just rejoined the cluster, and
//! its view then lags. That case must keep the records: removing them
//! would free a lock that its running holder was never told it lost.

//!
//! Gossip's verdict alone is not enough for "dead": a leader that was cut
//! off itself holds stale verdicts about nodes that never lost the
//! majority, and their holders are never told. So an ended incarnation's
//! records wait out a grace period of contact with a quorum ([`Grace`]),
//! long enough for a wrongly declared node to hear of it and rejoin, which
//! revokes its claims there. A superseded incarnation went through exactly
//! that rejoin (or a restart), so its records go at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One member entry of the gossip view: name, generation, up (alive or
/// suspect).
pub(crate) type Seen<'a> = (&'a str, u64, bool);

/// What the view says about an owner incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Up, or the view is behind it.
    Live,
    /// The node runs under a newer generation (restarted or rejoined).
    Superseded,
    /// That incarnation is dead or left, or the node is forgotten.
    Ended,
}

/// The view's verdict on `owner`.
pub(crate) fn verdict(owner: &str, view: &[Seen<'_>]) -> Verdict {
    let Some((node, generation)) = owner.rsplit_once('#') else { return Verdict::Ended };
    let Ok(generation) = generation.parse::<u64>() else { return Verdict::Ended };
    let mut known = false;
    let mut ended = false;
    for &(_, g, up) in view.iter().filter(|(name, ..)| *name == node) {
        known = true;
        if g > generation {
            return Verdict::Superseded;
        }
        ended |= g == generation && !up;
    }
    if ended || !known { Verdict::Ended } else { Verdict::Live }
}

/// When an owner's records may go: superseded ones at once, ended ones
/// after `grace` of both the verdict and the leader's quorum contact.
#[derive(Debug, Default)]
pub(crate) struct Grace {
    ended_since: HashMap<String, Instant>,
    contact_since: Option<Instant>,
}

impl Grace {
    /// Whether the leader is in contact with a quorum now; losing it starts
    /// every wait again.
    pub(crate) fn contact(&mut self, ok: bool, now: Instant) {
        if ok {
            self.contact_since.get_or_insert(now);
        } else {
            self.contact_since = None;
            self.ended_since.clear();
        }
    }

    /// Whether `owner`'s records may be removed now.
    pub(crate) fn ready(&mut self, owner: &str, verdict: Verdict, now: Instant, grace: Duration) -> bool {
        let Some(contact) = self.contact_since else { return false };
        match verdict {
            Verdict::Live => {
                self.ended_since.remove(owner);
                false
            }
            Verdict::Superseded => true,
            Verdict::Ended => {
                let since = *self.ended_since.entry(owner.to_owned()).or_insert(now);
                now.duration_since(since.max(contact)) >= grace
            }
        }
    }

    /// Forgets owners that have no records any more.
    pub(crate) fn keep_only(&mut self, owners: &[&str]) {
        self.ended_since.retain(|o, _| owners.contains(&o.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_follows_the_generation_in_view() {
        let view = [("a", 5, true), ("b", 7, false), ("c", 3, true), ("c", 9, true)];
        assert_eq!(verdict("a#5", &view), Verdict::Live, "up under this generation");
        assert_eq!(verdict("a#6", &view), Verdict::Live, "the view is behind a newer incarnation");
        assert_eq!(verdict("a#4", &view), Verdict::Superseded);
        assert_eq!(verdict("b#7", &view), Verdict::Ended, "this incarnation is dead");
        assert_eq!(verdict("c#3", &view), Verdict::Superseded, "c restarted as generation 9");
        assert_eq!(verdict("c#9", &view), Verdict::Live);
        assert_eq!(verdict("d#1", &view), Verdict::Ended, "forgotten by gossip");
        assert_eq!(verdict("garbage", &view), Verdict::Ended);
    }

    #[test]
    fn an_ended_owner_waits_out_the_grace_with_quorum_contact() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let grace = Duration::from_millis(100);
        let mut g = Grace::default();
        assert!(!g.ready("a#1", Verdict::Superseded, at(0), grace), "nothing without quorum contact");
        g.contact(true, at(0));
        assert!(g.ready("a#1", Verdict::Superseded, at(0), grace), "superseded: at once");
        assert!(!g.ready("b#1", Verdict::Ended, at(10), grace));
        assert!(!g.ready("b#1", Verdict::Ended, at(100), grace));
        assert!(g.ready("b#1", Verdict::Ended, at(110), grace));
        // A stale verdict formed while cut off: the wait starts with contact.
        g.contact(false, at(120));
        assert!(!g.ready("c#1", Verdict::Ended, at(130), grace));
        g.contact(true, at(500));
        assert!(!g.ready("c#1", Verdict::Ended, at(550), grace));
        assert!(!g.ready("c#1", Verdict::Ended, at(600), grace));
        assert!(g.ready("c#1", Verdict::Ended, at(650), grace));
        // A verdict that turned live again starts over.
        assert!(!g.ready("d#1", Verdict::Ended, at(650), grace));
        assert!(!g.ready("d#1", Verdict::Live, at(700), grace));
        assert!(!g.ready("d#1", Verdict::Ended, at(720), grace));
        assert!(g.ready("d#1", Verdict::Ended, at(820), grace));
    }
}
