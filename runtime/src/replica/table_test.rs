//! Several tables driven by hand: what one node's change does to another's
//! view, how gaps heal, and how EVENTUAL name conflicts settle.

use super::*;
use crate::replica::names::NameError;

fn table(node: &str) -> Table {
    let mut t = Table::new(node, 1);
    t.declare("s", Limits::default());
    t
}

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Delivers `fx`'s change batch from `from` to `to`.
fn ship(from: &Table, fx: &Effects, to: &mut Table) -> Effects {
    let (seq, changes) = fx.delta.as_ref().expect("a change batch");
    to.on_delta(from.node(), from.position().generation, *seq, changes)
}

/// Gives `to` a full copy of `from`.
fn sync(from: &Table, to: &mut Table) -> Effects {
    let (pos, state) = from.snapshot();
    to.on_snapshot(from.node(), pos.generation, pos.seq, state)
}

#[test]
fn joins_reach_other_nodes_and_their_watchers() {
    let (mut a, mut b) = (table("a"), table("b"));
    sync(&a, &mut b);
    let start = b.watch(7, "<b.0.9>", "s", Some("g")).unwrap();
    assert_eq!(start, BTreeMap::from([("g".to_string(), vec![])]));
    let fx = a.join("s", &groups(&["g", "h"]), "<a.0.1>").unwrap();
    assert_eq!(fx.delta.as_ref().map(|d| d.0), Some(1));
    let seen = ship(&a, &fx, &mut b);
    assert_eq!(seen.events.len(), 1, "only g is watched: {seen:?}");
    assert_eq!(
        seen.events[0],
        GroupEvent { sub: 7, to: "<b.0.9>".into(), group: "g".into(), joined: true, pids: vec!["<a.0.1>".into()] }
    );
    b.join("s", &groups(&["g"]), "<b.0.2>").unwrap();
    assert_eq!(b.members("s", "g"), ["<b.0.2>", "<a.0.1>"], "local members first");
    assert_eq!(b.local_members("s", "g"), ["<b.0.2>"]);
    assert_eq!(b.which_groups("s"), BTreeSet::from(["g".to_string(), "h".to_string()]));
    assert_eq!(b.local_groups("s"), BTreeSet::from(["g".to_string()]));
}

#[test]
fn leave_undoes_one_join_and_refuses_a_stranger() {
    let mut a = table("a");
    a.join("s", &groups(&["g"]), "p").unwrap();
    a.join("s", &groups(&["g"]), "p").unwrap();
    a.leave("s", &groups(&["g", "other"]), "p").unwrap();
    assert_eq!(a.members("s", "g"), ["p"]);
    assert_eq!(a.leave("s", &groups(&["other"]), "p"), Err(PgError::NotMember("other".into())));
    assert_eq!(a.join("s", &groups(&["g"]), "q").map(|_| ()), Ok(()));
    assert_eq!(a.join("nope", &groups(&["g"]), "q").unwrap_err(), PgError::NoScope("nope".into()));
}

#[test]
fn an_exit_removes_every_join_name_and_subscription() {
    let (mut a, mut b) = (table("a"), table("b"));
    sync(&a, &mut b);
    b.watch(1, "w", "s", None).unwrap();
    for fx in [
        a.join("s", &groups(&["g", "g", "h"]), "p").unwrap(),
        a.bind("svc", "p", 5).unwrap(),
        a.join("s", &groups(&["g"]), "q").unwrap(),
    ] {
        ship(&a, &fx, &mut b);
    }
    a.watch(2, "p", "s", None).unwrap();
    let fx = a.exit("p");
    assert_eq!(a.figures()[3], 0, "p's own subscription ended");
    assert_eq!(a.members("s", "g"), ["q"]);
    assert_eq!(a.resolve("svc"), None);
    let seen = ship(&a, &fx, &mut b);
    let left: Vec<(&str, usize)> = seen.events.iter().map(|e| (e.group.as_str(), e.pids.len())).collect();
    assert_eq!(left, [("g", 1), ("g", 1), ("h", 1)], "one leave per join");
    assert!(seen.events.iter().all(|e| !e.joined));
    assert_eq!(b.members("s", "g"), ["q"]);
    assert_eq!(b.resolve("svc"), None);
    assert_eq!(a.exit("nobody"), Effects::default());
}

#[test]
fn a_lost_change_is_detected_and_a_snapshot_heals_it() {
    let (mut a, mut b) = (table("a"), table("b"));
    sync(&a, &mut b);
    b.watch(1, "w", "s", Some("g")).unwrap();
    let _lost = a.join("s", &groups(&["g"]), "p").unwrap();
    let next = a.join("s", &groups(&["g"]), "q").unwrap();
    let seen = ship(&a, &next, &mut b);
    assert!(seen.pull, "change 2 without change 1 asks for a snapshot");
    assert!(b.members("s", "g").is_empty(), "nothing applied past the gap");
    assert!(b.on_digest("a", 1, 2), "the digest shows the copy is behind");
    let healed = sync(&a, &mut b);
    assert_eq!(b.members("s", "g"), ["p", "q"]);
    assert_eq!(healed.events.len(), 1);
    assert_eq!(healed.events[0].pids, ["p", "q"]);
    assert!(!b.on_digest("a", 1, 2));
    assert!(!ship(&a, &next, &mut b).pull, "a duplicate is skipped");
    assert_eq!(b.members("s", "g"), ["p", "q"]);
}

#[test]
fn a_departed_node_takes_its_members_and_names_along() {
    let (mut a, mut b) = (table("a"), table("b"));
    sync(&a, &mut b);
    let fx = a.join("s", &groups(&["g"]), "p").unwrap();
    ship(&a, &fx, &mut b);
    let fx = a.bind("svc", "p", 1).unwrap();
    ship(&a, &fx, &mut b);
    b.watch(3, "w", "s", Some("g")).unwrap();
    let fx = b.node_down("a");
    assert_eq!(fx.events.len(), 1);
    assert!(!fx.events[0].joined);
    assert!(b.members("s", "g").is_empty());
    assert_eq!(b.resolve("svc"), None);
    assert!(b.remote_nodes().is_empty());
    let fx = a.join("s", &groups(&["h"]), "p").unwrap();
    assert!(ship(&a, &fx, &mut b).pull, "after a departure only a snapshot restores the copy");
}

#[test]
fn a_restarted_node_replaces_its_old_copy() {
    let (mut a, mut b) = (table("a"), table("b"));
    sync(&a, &mut b);
    let fx = a.join("s", &groups(&["g"]), "old").unwrap();
    ship(&a, &fx, &mut b);
    let mut a2 = Table::new("a", 2);
    a2.declare("s", Limits::default());
    a2.join("s", &groups(&["g"]), "new").unwrap();
    sync(&a2, &mut b);
    assert_eq!(b.members("s", "g"), ["new"]);
    let stale = a.join("s", &groups(&["g"]), "late").unwrap();
    assert!(!ship(&a, &stale, &mut b).pull, "the old incarnation's traffic is ignored");
    assert_eq!(b.members("s", "g"), ["new"]);
}

#[test]
fn concurrent_eventual_names_settle_on_the_earlier_registration() {
    let (mut a, mut b) = (table("a"), table("b"));
    sync(&a, &mut b);
    sync(&b, &mut a);
    let fa = a.bind("leader", "<a.0.1>", 20).unwrap();
    let fb = b.bind("leader", "<b.0.1>", 10).unwrap();
    let at_b = ship(&a, &fa, &mut b);
    assert!(at_b.revoked.is_empty(), "b's registration is earlier: b keeps it");
    let at_a = ship(&b, &fb, &mut a);
    assert_eq!(at_a.revoked, [("<a.0.1>".to_string(), "leader".to_string())]);
    let drop = at_a.delta.as_ref().expect("a publishes that it dropped the name");
    assert_eq!(drop.1, [Change::Unbind { name: "leader".into() }]);
    ship(&a, &at_a, &mut b);
    assert_eq!(a.resolve("leader"), Some("<b.0.1>"));
    assert_eq!(b.resolve("leader"), Some("<b.0.1>"));
    assert_eq!(
        a.bind("leader", "<a.0.2>", 30),
        Err(NameError::Taken { name: "leader".into(), holder: "<b.0.1>".into() })
    );
    assert!(a.bind("leader", "<a.0.2>", 30).is_err());
    assert!(b.bind("leader", "<b.0.1>", 40).unwrap().delta.is_none(), "binding again is a no-op");
}

#[test]
fn a_tie_in_time_goes_to_the_lower_node_name() {
    let (mut a, mut b) = (table("a"), table("b"));
    let fa = a.bind("x", "pa", 5).unwrap();
    let fb = b.bind("x", "pb", 5).unwrap();
    sync(&a, &mut b);
    sync(&b, &mut a);
    let _ = (fa, fb);
    assert_eq!(a.resolve("x"), Some("pa"));
    assert_eq!(b.resolve("x"), Some("pa"));
    assert!(b.local_state().names.is_empty(), "b dropped its losing binding");
    assert!(a.conflicts("x", "pb"));
    assert!(!a.conflicts("x", "pa"));
}

#[test]
fn unbind_only_drops_this_nodes_binding() {
    let (mut a, mut b) = (table("a"), table("b"));
    sync(&a, &mut b);
    let fx = a.bind("x", "pa", 1).unwrap();
    ship(&a, &fx, &mut b);
    assert!(b.unbind("x").is_none(), "b holds no binding of x");
    assert_eq!(b.resolve("x"), Some("pa"));
    let fx = a.unbind("x").unwrap();
    ship(&a, &fx, &mut b);
    assert_eq!(b.resolve("x"), None);
}

#[test]
fn limits_refuse_before_changing_anything() {
    let mut a = Table::new("a", 1);
    a.declare("s", Limits { max_groups: 2, max_members: 2 });
    a.join("s", &groups(&["g", "h"]), "p").unwrap();
    assert_eq!(a.join("s", &groups(&["i"]), "p").unwrap_err(), PgError::TooManyGroups { scope: "s".into(), limit: 2 });
    a.join("s", &groups(&["g"]), "q").unwrap();
    assert_eq!(a.join("s", &groups(&["g"]), "r").unwrap_err(), PgError::TooManyMembers { group: "g".into(), limit: 2 });
    assert_eq!(a.position().seq, 2, "refused joins are not numbered");
}

#[test]
fn unwatch_is_only_for_the_owner() {
    let mut a = table("a");
    a.watch(5, "w", "s", Some("g")).unwrap();
    assert!(!a.unwatch(5, "intruder"));
    assert!(a.unwatch(5, "w"));
    assert!(!a.unwatch(5, "w"));
    assert_eq!(a.watch(6, "w", "missing", None).unwrap_err(), PgError::NoScope("missing".into()));
}

#[test]
fn figures_count_groups_joins_names_and_watchers() {
    let (mut a, mut b) = (table("a"), table("b"));
    sync(&a, &mut b);
    let fx = a.join("s", &groups(&["g", "g", "h"]), "p").unwrap();
    ship(&a, &fx, &mut b);
    let fx = a.bind("n1", "p", 1).unwrap();
    ship(&a, &fx, &mut b);
    b.join("s", &groups(&["g", "i"]), "q").unwrap();
    b.bind("n2", "q", 2).unwrap();
    b.watch(1, "q", "s", None).unwrap();
    assert_eq!(b.figures(), [3, 2, 2, 1]);
    assert_eq!(a.figures(), [2, 3, 1, 0]);
}
