//! The "raft last-contact" liveness check behind `/livez`.
//!
//! A voter that has not heard from a leader for a long time is stuck (cut
//! off, or wedged) and should be restarted by its supervisor; a standby
//! gets much longer, since it only matters when promoted; a leader always
//! passes (it is the one others hear from), and so does a node outside the
//! configuration. Nothing fails during a grace period after start.
//!
//! Pure: the clock and the facts are passed in.

use std::time::{Duration, Instant};

/// How many heartbeat timeouts a voter may go without a leader.
const VOTER_TIMEOUTS: u32 = 10;
/// How many heartbeat timeouts a standby may go without a leader.
const STANDBY_TIMEOUTS: u32 = 60;

/// The verdict for a node in `role` whose service started at `started`,
/// last reached by a leader at `contact`: `None` when healthy, else why not.
pub(crate) fn check(
    role: &str,
    started: Instant,
    contact: Option<Instant>,
    heartbeat_timeout: Duration,
    now: Instant,
) -> Option<String> {
    let limit = match role {
        "voter" => heartbeat_timeout * VOTER_TIMEOUTS,
        "standby" => heartbeat_timeout * STANDBY_TIMEOUTS,
        _ => return None,
    };
    let last = contact.unwrap_or(started).max(started);
    let silent = now.saturating_duration_since(last);
    (silent > limit).then(|| format!("raft: no contact from a leader for {} s (a {role})", silent.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HB: Duration = Duration::from_secs(1);

    #[test]
    fn voters_are_strict_standbys_lenient_leaders_always_pass() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(check("voter", t0, Some(at(5)), HB, at(15)), None);
        assert!(check("voter", t0, Some(at(5)), HB, at(16)).unwrap().contains("no contact from a leader for 11 s"));
        assert_eq!(check("standby", t0, Some(at(5)), HB, at(16)), None);
        assert!(check("standby", t0, Some(at(5)), HB, at(66)).is_some());
        assert_eq!(check("leader", t0, None, HB, at(1000)), None);
        assert_eq!(check("non-member", t0, None, HB, at(1000)), None);
    }

    #[test]
    fn the_start_counts_as_contact() {
        let t0 = Instant::now();
        assert_eq!(check("voter", t0, None, HB, t0 + Duration::from_secs(10)), None, "grace after start");
        assert!(check("voter", t0, None, HB, t0 + Duration::from_secs(11)).is_some());
    }
}
