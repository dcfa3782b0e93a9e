//! How the leader moves the Raft configuration towards the roles the
//! ranking chose: the fewest changes, in an order that never weakens the
//! quorum on the way.
//!
//! Order: new members join as learners (they catch up without voting),
//! learners that should vote are promoted, then voters that should only
//! stand by are demoted, then nodes that should not be in the
//! configuration at all are removed. A live voter leaves its seat (demoted
//! or removed) only once a promotion has filled it, so the number of
//! voters that can actually vote never drops because of the order of the
//! steps; a voter that is gone (not alive in gossip) is removed first,
//! since it cannot vote anyway and only makes the quorum harder to reach.
//!
//! Whatever the ranking wants, no step may produce a voter set without a
//! live majority: a membership change commits under joint consensus, so
//! such a step would stop every commit until the dead voters came back.

use std::collections::BTreeSet;

use super::roles::Roles;

/// One change to the Raft configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Add these nodes as learners.
    AddLearners(BTreeSet<u64>),
    /// Make these learners voters.
    Promote(BTreeSet<u64>),
    /// Make these voters learners (they keep the log).
    Demote(BTreeSet<u64>),
    /// Take these nodes out of the configuration.
    Remove(BTreeSet<u64>),
}

/// The current configuration as the leader sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) voters: BTreeSet<u64>,
    pub(crate) learners: BTreeSet<u64>,
}

/// Which nodes the leader can count on, in two strengths.
#[derive(Clone, Debug, Default)]
pub(crate) struct Liveness {
    /// Not yet known to be gone: up in gossip, or a voter that still
    /// answers heartbeats. A voter outside this set is evicted.
    pub(crate) alive: BTreeSet<u64>,
    /// Up in gossip and (for voters) answering heartbeats: the nodes a new
    /// configuration's quorum may be counted from.
    pub(crate) live: BTreeSet<u64>,
}

/// The steps from `now` to `want`, in order; empty when nothing changes.
/// `caught_up` says which learners have the log and may be promoted now
/// (the others are promoted by a later round).
pub(crate) fn plan(now: &Config, want: &Roles, caught_up: &BTreeSet<u64>, seen: &Liveness) -> Vec<Step> {
    let alive = &seen.alive;
    let wanted: BTreeSet<u64> = want.voters.union(&want.standbys).copied().collect();
    let present: BTreeSet<u64> = now.voters.union(&now.learners).copied().collect();
    let mut steps = Vec::new();
    let add: BTreeSet<u64> = wanted.difference(&present).copied().collect();
    if !add.is_empty() {
        steps.push(Step::AddLearners(add));
    }
    let promote: BTreeSet<u64> =
        want.voters.iter().filter(|id| now.learners.contains(id) && caught_up.contains(id)).copied().collect();
    if !promote.is_empty() {
        steps.push(Step::Promote(promote.clone()));
    }
    // Live voters give up their seat only as far as the live voters after
    // the promotions exceed the target.
    let live_voters = now.voters.iter().filter(|id| alive.contains(id)).count() + promote.len();
    let mut surplus = live_voters.saturating_sub(want.voters.len());
    let mut demote = BTreeSet::new();
    let mut remove = BTreeSet::new();
    let dead: BTreeSet<u64> =
        now.voters.iter().filter(|id| !want.voters.contains(id) && !alive.contains(id)).copied().collect();
    if !dead.is_empty() {
        steps.push(Step::Remove(dead.clone()));
    }
    for id in now.voters.iter().filter(|id| !want.voters.contains(id) && !dead.contains(id)) {
        if surplus > 0 {
            surplus -= 1;
            if want.standbys.contains(id) {
                demote.insert(*id)
            } else {
                remove.insert(*id)
            };
        }
    }
    remove.extend(now.learners.difference(&wanted));
    if !demote.is_empty() {
        steps.push(Step::Demote(demote));
    }
    if !remove.is_empty() {
        steps.push(Step::Remove(remove));
    }
    keep_live_majority(steps, &now.voters, &seen.live)
}

/// The steps up to (not including) the first whose voter set would lack a
/// live majority.
fn keep_live_majority(steps: Vec<Step>, voters: &BTreeSet<u64>, alive: &BTreeSet<u64>) -> Vec<Step> {
    let mut voters = voters.clone();
    let mut kept = Vec::with_capacity(steps.len());
    for step in steps {
        match &step {
            Step::AddLearners(_) => {}
            Step::Promote(ids) => voters.extend(ids),
            Step::Demote(ids) | Step::Remove(ids) => voters.retain(|v| !ids.contains(v)),
        }
        let live = voters.iter().filter(|v| alive.contains(v)).count();
        if live * 2 <= voters.len() {
            break;
        }
        kept.push(step);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    fn roles(voters: &[u64], standbys: &[u64]) -> Roles {
        Roles { voters: set(voters), standbys: set(standbys) }
    }

    /// Every node in these tests is alive unless a test says otherwise.
    fn all() -> Liveness {
        seen(&(0..100).collect::<Vec<_>>())
    }

    /// Nodes alive and live alike.
    fn seen(ids: &[u64]) -> Liveness {
        Liveness { alive: set(ids), live: set(ids) }
    }

    #[test]
    fn nothing_to_do_when_the_configuration_matches() {
        let now = Config { voters: set(&[1, 2, 3]), learners: set(&[4]) };
        assert!(plan(&now, &roles(&[1, 2, 3], &[4]), &set(&[4]), &all()).is_empty());
    }

    #[test]
    fn growing_from_one_voter_adds_then_promotes_caught_up_learners() {
        let now = Config { voters: set(&[1]), learners: BTreeSet::new() };
        let want = roles(&[1, 2, 3], &[4]);
        assert_eq!(plan(&now, &want, &BTreeSet::new(), &all()), vec![Step::AddLearners(set(&[2, 3, 4]))]);
        let now = Config { voters: set(&[1]), learners: set(&[2, 3, 4]) };
        assert_eq!(plan(&now, &want, &set(&[2]), &all()), vec![Step::Promote(set(&[2]))], "only the caught-up one");
        assert_eq!(plan(&now, &want, &set(&[2, 3, 4]), &all()), vec![Step::Promote(set(&[2, 3]))]);
    }

    #[test]
    fn a_departed_voter_is_replaced_by_the_best_standby_and_removed() {
        // 3 died; the ranking now wants 4 (a caught-up standby) to vote.
        let now = Config { voters: set(&[1, 2, 3]), learners: set(&[4, 5]) };
        let want = roles(&[1, 2, 4], &[5]);
        let alive = seen(&[1, 2, 4, 5]);
        assert_eq!(plan(&now, &want, &set(&[4, 5]), &alive), vec![Step::Promote(set(&[4])), Step::Remove(set(&[3]))]);
        // Even before the standby caught up, the dead voter goes.
        assert_eq!(plan(&now, &want, &BTreeSet::new(), &alive), vec![Step::Remove(set(&[3]))]);
    }

    #[test]
    fn a_dead_voter_goes_before_a_live_one_steps_down() {
        // Three voters, 1 died; two candidates left, so the ranking wants
        // one voter. Demoting 3 first would leave {1, 2} with one live
        // member: no quorum, no commit, ever. Removing 1 first is safe.
        let now = Config { voters: set(&[1, 2, 3]), learners: BTreeSet::new() };
        let want = roles(&[2], &[3]);
        let alive = seen(&[2, 3]);
        assert_eq!(plan(&now, &want, &BTreeSet::new(), &alive), vec![Step::Remove(set(&[1])), Step::Demote(set(&[3]))]);
    }

    #[test]
    fn a_voter_that_left_but_still_seems_heard_does_not_count_for_a_new_quorum() {
        // 1 left gossip a moment ago; its last heartbeat answer is recent,
        // so it is not evicted yet, but it cannot help commit {1, 3}.
        let now = Config { voters: set(&[1, 2, 3]), learners: BTreeSet::new() };
        let want = roles(&[3], &[2]);
        let view = Liveness { alive: set(&[1, 2, 3]), live: set(&[2, 3]) };
        assert!(plan(&now, &want, &BTreeSet::new(), &view).is_empty());
        // Once it stops answering too, it goes first, then 2 stands by.
        let view = seen(&[2, 3]);
        assert_eq!(plan(&now, &want, &BTreeSet::new(), &view), vec![Step::Remove(set(&[1])), Step::Demote(set(&[2]))]);
    }

    #[test]
    fn no_step_leaves_the_voters_without_a_live_majority() {
        // Five voters, 1 and 2 dead: demoting 4 and 5 would leave {1, 2, 3}
        // with one live member.
        let five = set(&[1, 2, 3, 4, 5]);
        let steps = keep_live_majority(vec![Step::Demote(set(&[4, 5]))], &five, &set(&[3, 4, 5]));
        assert!(steps.is_empty());
        // The steps before the unsafe one still run.
        let three = set(&[1, 2, 3]);
        let steps = keep_live_majority(
            vec![Step::AddLearners(set(&[6])), Step::Demote(set(&[2])), Step::Remove(set(&[3]))],
            &three,
            &set(&[1, 2]),
        );
        assert_eq!(steps, vec![Step::AddLearners(set(&[6]))]);
    }

    #[test]
    fn a_better_node_takes_a_seat_and_the_old_voter_stands_by() {
        let now = Config { voters: set(&[2, 3, 4]), learners: set(&[1]) };
        let want = roles(&[1, 2, 3], &[4]);
        assert_eq!(plan(&now, &want, &set(&[1]), &all()), vec![Step::Promote(set(&[1])), Step::Demote(set(&[4]))]);
        // Not caught up yet: nobody is demoted, the seat stays filled.
        assert!(plan(&now, &want, &BTreeSet::new(), &all()).is_empty());
    }

    #[test]
    fn a_live_voter_keeps_its_seat_until_its_replacement_votes() {
        // 3 is alive but now ranked out (say it became a client); 5 is new.
        let now = Config { voters: set(&[1, 2, 3]), learners: set(&[7]) };
        let want = roles(&[1, 2, 5], &[6]);
        let steps = plan(&now, &want, &BTreeSet::new(), &all());
        assert_eq!(steps, vec![Step::AddLearners(set(&[5, 6])), Step::Remove(set(&[7]))]);
        let now = Config { voters: set(&[1, 2, 3]), learners: set(&[5, 6]) };
        let steps = plan(&now, &want, &set(&[5, 6]), &all());
        assert_eq!(steps, vec![Step::Promote(set(&[5])), Step::Remove(set(&[3]))]);
    }
}
