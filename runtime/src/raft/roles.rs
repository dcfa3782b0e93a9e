//! Who should vote: the deterministic ranking every node computes the same
//! way from the same gossip view.
//!
//! Eligible nodes are ranked by priority (lower first), then by the seat
//! they hold now (voters, then standbys, then the rest), then by Raft id.
//! The seat comes before the id so that a node joining with a "better" id
//! takes an empty seat but never someone else's: with equal priorities the
//! configuration only changes when a member leaves or seats are free, not
//! whenever a node joins. A better priority still takes a seat (that is
//! what the operator asked for).
//! Voters are taken from the top of that ranking, first one per failure
//! domain, then the best of the rest, up to `max_voters` (kept odd, so a
//! quorum never needs more nodes than an odd count would). The next best
//! become standbys (non-voting learners that hold the whole log, ready to
//! be promoted), up to `max_standbys`. Every other node is a client: it is
//! not in the Raft configuration at all, so it costs the leader nothing.

use std::collections::BTreeSet;

/// One node as the ranking sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// Raft id (derived from the name).
    pub(crate) id: u64,
    /// May vote (`raft.eligible` and not `raft.role: client`).
    pub(crate) eligible: bool,
    /// Lower is preferred.
    pub(crate) priority: u32,
    /// Rack, zone or host label.
    pub(crate) failure_domain: String,
    /// What it holds in the configuration now.
    pub(crate) seat: Seat,
}

/// A node's place in the current configuration; the order is the
/// preference among nodes of equal priority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Seat {
    /// A voter now.
    Voter,
    /// A standby (learner) now.
    Standby,
    /// Not in the configuration.
    #[default]
    None,
}

/// The roles the ranking assigns, as sets of Raft ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Roles {
    pub(crate) voters: BTreeSet<u64>,
    pub(crate) standbys: BTreeSet<u64>,
}

/// The largest odd number not above `n` (0 stays 0).
fn odd_floor(n: usize) -> usize {
    if n == 0 {
        0
    } else if n % 2 == 1 {
        n
    } else {
        n - 1
    }
}

/// Assigns voters and standbys among `candidates`; everyone else is a
/// client. Independent of the input order.
pub(crate) fn choose(candidates: &[Candidate], max_voters: usize, max_standbys: usize) -> Roles {
    let mut ranked: Vec<&Candidate> = candidates.iter().filter(|c| c.eligible).collect();
    ranked.sort_by_key(|c| (c.priority, c.seat, c.id));
    ranked.dedup_by_key(|c| c.id);
    let want = odd_floor(max_voters.min(ranked.len()));
    let mut voters = BTreeSet::new();
    let mut domains = BTreeSet::new();
    // First pass: the best of each failure domain.
    for c in &ranked {
        if voters.len() == want {
            break;
        }
        if domains.insert(c.failure_domain.as_str()) {
            voters.insert(c.id);
        }
    }
    // Second pass: fill up with the best of the rest.
    for c in &ranked {
        if voters.len() == want {
            break;
        }
        voters.insert(c.id);
    }
    let standbys = ranked.iter().map(|c| c.id).filter(|id| !voters.contains(id)).take(max_standbys).collect();
    Roles { voters, standbys }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: u64, priority: u32, domain: &str) -> Candidate {
        Candidate { id, eligible: true, priority, failure_domain: domain.into(), seat: Seat::None }
    }

    fn seated(seat: Seat, cs: Vec<Candidate>) -> Vec<Candidate> {
        cs.into_iter().map(|c| Candidate { seat, ..c }).collect()
    }

    #[test]
    fn a_joining_node_takes_free_seats_but_not_held_ones() {
        let mut nodes = seated(Seat::Voter, vec![c(5, 0, ""), c(6, 0, ""), c(7, 0, "")]);
        nodes.extend(seated(Seat::Standby, vec![c(8, 0, "")]));
        // 1 and 2 rank better by id, but the seats are held.
        nodes.extend([c(1, 0, ""), c(2, 0, "")]);
        let r = choose(&nodes, 3, 2);
        assert_eq!(r.voters, set(&[5, 6, 7]));
        assert_eq!(r.standbys, set(&[8, 1]), "the free standby seat goes to the best newcomer");
        // A better priority still wins a seat.
        nodes.push(c(3, 0, ""));
        nodes[4].priority = 0;
        for n in nodes.iter_mut().filter(|n| n.seat != Seat::None) {
            n.priority = 1;
        }
        let r = choose(&nodes, 3, 2);
        assert_eq!(r.voters, set(&[1, 2, 3]));
    }

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn voters_are_the_best_ranked_and_the_count_stays_odd() {
        let nodes: Vec<Candidate> = (1..=12).map(|i| c(i, 0, "")).collect();
        let r = choose(&nodes, 5, 4);
        assert_eq!(r.voters, set(&[1, 2, 3, 4, 5]));
        assert_eq!(r.standbys, set(&[6, 7, 8, 9]));
        let r = choose(&nodes[..4], 5, 4);
        assert_eq!(r.voters, set(&[1, 2, 3]), "four eligible nodes give three voters");
        assert_eq!(r.standbys, set(&[4]));
        assert_eq!(choose(&nodes[..1], 5, 4).voters, set(&[1]));
        assert_eq!(choose(&[], 5, 4), Roles::default());
    }

    #[test]
    fn priority_wins_over_id_and_clients_never_vote() {
        let mut nodes = vec![c(1, 5, ""), c(2, 0, ""), c(3, 0, ""), c(4, 1, "")];
        nodes.push(Candidate { eligible: false, ..c(0, 0, "") });
        let r = choose(&nodes, 3, 4);
        assert_eq!(r.voters, set(&[2, 3, 4]));
        assert_eq!(r.standbys, set(&[1]));
    }

    #[test]
    fn voters_spread_over_failure_domains_first() {
        let nodes = vec![c(1, 0, "a"), c(2, 0, "a"), c(3, 0, "a"), c(4, 0, "b"), c(5, 0, "c"), c(6, 0, "a")];
        let r = choose(&nodes, 3, 4);
        assert_eq!(r.voters, set(&[1, 4, 5]), "one per domain before a second from any");
        let r = choose(&nodes, 5, 4);
        assert_eq!(r.voters, set(&[1, 2, 3, 4, 5]));
        assert_eq!(r.standbys, set(&[6]));
    }

    #[test]
    fn the_input_order_does_not_matter() {
        let nodes = vec![c(9, 1, "x"), c(3, 0, "y"), c(7, 0, "x"), c(1, 2, "z"), c(5, 0, "y")];
        let mut reversed = nodes.clone();
        reversed.reverse();
        assert_eq!(choose(&nodes, 3, 1), choose(&reversed, 3, 1));
    }
}
