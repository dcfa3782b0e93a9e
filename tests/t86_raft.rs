//! The Raft core between `wippy run` processes: the seed bootstraps alone,
//! the leader adds the two joiners as voters, every node agrees on the
//! leader, and when the leader is killed the two others elect a new one in
//! a later term.

#[path = "common/harness.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(30);

/// Fast timeouts so the test does not wait on the production defaults.
fn fast() -> Vec<String> {
    vec!["cluster.raft.heartbeat_timeout=500ms".to_owned(), "cluster.raft.reconcile_debounce=300ms".to_owned()]
}

/// `(role, leader, term, voters)` from the last status line printed at or after `since`.
fn last(lines: &[(Instant, String)], since: Instant) -> Option<(String, String, u64, u64)> {
    lines.iter().rev().filter(|(t, _)| *t >= since).find_map(|(_, l)| {
        let mut f = l.strip_prefix("raft ")?.split(' ');
        let (role, leader, term, voters) = (f.next()?, f.next()?, f.next()?, f.next()?);
        Some((role.to_owned(), leader.to_owned(), term.parse().ok()?, voters.parse().ok()?))
    })
}

#[test]
fn a_three_node_cluster_forms_and_fails_over() {
    let app = app_fixture("raft");
    let ports = [free_port(), free_port(), free_port()];
    let mut n1 = cluster_node(&app, "n1", ports[0], None, SECRET, &fast());
    n1.wait_line(T, |l| l.starts_with("raft leader n1"));
    let mut n2 = cluster_node(&app, "n2", ports[1], Some(ports[0]), SECRET, &fast());
    let mut n3 = cluster_node(&app, "n3", ports[2], Some(ports[0]), SECRET, &fast());
    let start = Instant::now();
    for n in [&mut n1, &mut n2, &mut n3] {
        n.wait_until("three voters and leader n1", T, |ls| {
            last(ls, start).is_some_and(|(_, leader, _, voters)| leader == "n1" && voters == 3)
        });
    }
    let (_, _, term, _) = last(&n1.timed_lines(), start).unwrap();
    let roles: Vec<String> = [&n1, &n2, &n3].iter().map(|n| last(&n.timed_lines(), start).unwrap().0).collect();
    assert_eq!(roles, ["leader", "voter", "voter"]);

    n1.signal(libc::SIGKILL);
    let _ = n1.wait(T);
    let killed = Instant::now();
    for n in [&mut n2, &mut n3] {
        n.wait_until("a new leader", T, |ls| {
            last(ls, killed).is_some_and(|(_, leader, t, _)| (leader == "n2" || leader == "n3") && t > term)
        });
    }
    let a = last(&n2.timed_lines(), killed).unwrap();
    let b = last(&n3.timed_lines(), killed).unwrap();
    assert_eq!(a.1, b.1, "both agree on the new leader");

    for mut n in [n2, n3] {
        n.signal(libc::SIGTERM);
        let out = n.wait(T);
        assert!(!out.stderr.contains("panicked at"), "{}", out.describe());
    }
}
