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

/// `(voters, standbys)` from the last status line printed at or after `since`.
fn seats(lines: &[(Instant, String)], since: Instant) -> Option<(String, u64, u64)> {
    lines.iter().rev().filter(|(t, _)| *t >= since).find_map(|(_, l)| {
        let f: Vec<&str> = l.strip_prefix("raft ")?.split(' ').collect();
        Some((f.first()?.to_string(), f.get(3)?.parse().ok()?, f.get(4)?.parse().ok()?))
    })
}

/// Waits until the latest status lines of `nodes` show exactly
/// `(leaders, voters, standbys, non-members)`.
fn settle(nodes: &[Running], want: (usize, usize, usize, usize)) {
    let deadline = Instant::now() + T;
    loop {
        let now = Instant::now();
        std::thread::sleep(Duration::from_millis(300));
        let mut roles = std::collections::BTreeMap::new();
        for n in nodes {
            let role = seats(&n.timed_lines(), now).map_or_else(|| "?".to_owned(), |(r, _, _)| r);
            *roles.entry(role).or_insert(0) += 1;
        }
        let count = |r: &str| roles.get(r).copied().unwrap_or(0);
        if (count("leader"), count("voter"), count("standby"), count("non-member")) == want {
            return;
        }
        assert!(Instant::now() < deadline, "roles never settled to {want:?}: {roles:?}");
    }
}

/// Twelve nodes: five voters, four standbys, three clients outside the
/// configuration, and every node agrees; when a voter is killed, a standby
/// takes its seat and a client becomes a standby.
#[test]
fn twelve_nodes_fill_five_voter_and_four_standby_seats() {
    let app = app_fixture("raft");
    let ports: Vec<u16> = (0..12).map(|_| free_port()).collect();
    let mut nodes = vec![cluster_node(&app, "m00", ports[0], None, SECRET, &fast())];
    nodes[0].wait_line(T, |l| l.starts_with("raft leader m00"));
    for (i, port) in ports.iter().enumerate().skip(1) {
        nodes.push(cluster_node(&app, &format!("m{i:02}"), *port, Some(ports[0]), SECRET, &fast()));
    }
    // The ranking may seat the first leader as a standby; then the voters
    // elect another. Either way every node ends up agreeing.
    settle(&nodes, (1, 4, 4, 3));

    let now = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let voter =
        nodes.iter().position(|n| seats(&n.timed_lines(), now).is_some_and(|(r, _, _)| r == "voter")).expect("a voter");
    let mut victim = nodes.remove(voter);
    victim.signal(libc::SIGKILL);
    let _ = victim.wait(T);
    settle(&nodes, (1, 4, 4, 2));

    for mut n in nodes {
        n.signal(libc::SIGTERM);
        let out = n.wait(T);
        assert!(!out.stderr.contains("panicked at"), "{}", out.describe());
    }
}

/// A voter that no leader reaches fails `/livez` after ten heartbeat
/// timeouts, saying why; the cluster's leader itself always passes.
#[test]
fn a_voter_cut_off_from_any_leader_fails_liveness() {
    let app = app_fixture("raft");
    let ports = [free_port(), free_port(), free_port()];
    let admin = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut with_admin = fast();
    with_admin.extend(["admin.enabled=true".to_owned(), format!("admin.address=127.0.0.1:{admin}")]);
    let mut n1 = cluster_node(&app, "n1", ports[0], None, SECRET, &fast());
    n1.wait_line(T, |l| l.starts_with("raft leader n1"));
    let n2 = cluster_node(&app, "n2", ports[1], Some(ports[0]), SECRET, &fast());
    let mut n3 = cluster_node(&app, "n3", ports[2], Some(ports[0]), SECRET, &with_admin);
    let start = Instant::now();
    n3.wait_until("n3 a voter under n1", T, |ls| {
        last(ls, start).is_some_and(|(role, leader, _, voters)| role == "voter" && leader == "n1" && voters == 3)
    });
    assert_eq!(http_get(admin, "/livez", None).0, 200);

    // Freeze both others: n3 keeps running but no leader can reach it.
    n1.signal(libc::SIGSTOP);
    n2.signal(libc::SIGSTOP);
    let mut last_body = String::new();
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        let (code, body) = http_get(admin, "/livez", None);
        if code == 503 && body.contains("no contact from a leader") {
            last_body.clear();
            break;
        }
        last_body = body;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(last_body.is_empty(), "livez never failed on raft contact: {last_body}");
    for n in [&n1, &n2] {
        n.signal(libc::SIGCONT);
    }
    for mut n in [n1, n2, n3] {
        n.signal(libc::SIGTERM);
        let out = n.wait(T);
        assert!(!out.stderr.contains("panicked at"), "{}", out.describe());
    }
}
