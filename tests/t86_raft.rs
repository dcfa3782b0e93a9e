//! The Raft core between `wippy run` processes: the seed bootstraps alone,
//! the leader adds the two joiners as voters, every node agrees on the
//! leader, and when the leader is killed the two others elect a new one in
//! a later term.

#[path = "common/harness.rs"]
mod common;
#[path = "common/raft.rs"]
mod raft;

use std::time::{Duration, Instant};

use common::*;
use raft::{fast, roles, status};

const T: Duration = Duration::from_secs(30);

fn settle(nodes: &[Running], want: (usize, usize, usize, usize)) {
    raft::settle(nodes, want, T);
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
            status(ls, start).is_some_and(|s| s.leader == "n1" && s.voters == 3)
        });
    }
    let term = status(&n1.timed_lines(), start).unwrap().term;
    let roles: Vec<String> = [&n1, &n2, &n3].iter().map(|n| status(&n.timed_lines(), start).unwrap().role).collect();
    assert_eq!(roles, ["leader", "voter", "voter"]);

    n1.signal(libc::SIGKILL);
    let _ = n1.wait(T);
    let killed = Instant::now();
    for n in [&mut n2, &mut n3] {
        n.wait_until("a new leader", T, |ls| {
            status(ls, killed).is_some_and(|s| (s.leader == "n2" || s.leader == "n3") && s.term > term)
        });
    }
    let a = status(&n2.timed_lines(), killed).unwrap();
    let b = status(&n3.timed_lines(), killed).unwrap();
    assert_eq!(a.leader, b.leader, "both agree on the new leader");

    for mut n in [n2, n3] {
        n.signal(libc::SIGTERM);
        let out = n.wait(T);
        assert!(!out.stderr.contains("panicked at"), "{}", out.describe());
    }
}

/// `bootstrap_expect: 3` on three nodes that list each other as seeds:
/// none forms a cluster alone; once all three see each other they form one
/// together, with all three as voters and one leader they agree on.
#[test]
fn three_nodes_bootstrap_together_when_they_expect_three() {
    let app = app_fixture("raft");
    let ports = [free_port(), free_port(), free_port()];
    let node = |i: usize| {
        let seeds: Vec<String> =
            ports.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| format!("127.0.0.1:{p}")).collect();
        let mut extra = fast();
        extra.push("cluster.raft.bootstrap_expect=3".to_owned());
        extra.push(format!("cluster.membership.join_addrs={}", seeds.join(",")));
        cluster_node(&app, &format!("b{}", i + 1), ports[i], None, SECRET, &extra)
    };
    let mut first = node(0);
    // Alone (its seeds are not up yet) it must not form a cluster.
    std::thread::sleep(Duration::from_secs(3));
    let alone = Instant::now() - Duration::from_secs(1);
    assert_eq!(status(&first.timed_lines(), alone).map(|s| s.role), Some("non-member".to_owned()));
    let mut nodes = vec![node(1), node(2)];
    nodes.insert(0, first);
    settle(&nodes, (1, 2, 0, 0));
    let now = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let leaders: Vec<String> = nodes.iter().map(|n| status(&n.timed_lines(), now).unwrap().leader).collect();
    assert!(leaders.iter().all(|l| *l == leaders[0] && l != "-"), "leaders: {leaders:?}");
    first = nodes.remove(0);
    nodes.push(first);
    stop_all(nodes);
}

/// Five nodes with the default five voting seats: all five vote.
#[test]
fn five_nodes_all_vote() {
    let app = app_fixture("raft");
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let mut nodes = vec![cluster_node(&app, "f0", ports[0], None, SECRET, &fast())];
    nodes[0].wait_line(T, |l| l.starts_with("raft leader f0"));
    for (i, port) in ports.iter().enumerate().skip(1) {
        nodes.push(cluster_node(&app, &format!("f{i}"), *port, Some(ports[0]), SECRET, &fast()));
    }
    settle(&nodes, (1, 4, 0, 0));
    stop_all(nodes);
}

/// Three voting seats over failure domains a, a, a, b, c: the voters are
/// one node of each domain (the ranking fills distinct domains first),
/// the other two a-nodes stand by.
#[test]
fn voters_spread_over_failure_domains() {
    let app = app_fixture("raft");
    let domains = ["a", "a", "a", "b", "c"];
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let opts = |i: usize| {
        let mut o = fast();
        o.push(format!("cluster.failure_domain={}", domains[i]));
        o.push("cluster.raft.max_voters=3".to_owned());
        o
    };
    let mut nodes = vec![cluster_node(&app, "d0", ports[0], None, SECRET, &opts(0))];
    nodes[0].wait_line(T, |l| l.starts_with("raft leader d0"));
    for (i, port) in ports.iter().enumerate().skip(1) {
        nodes.push(cluster_node(&app, &format!("d{i}"), *port, Some(ports[0]), SECRET, &opts(i)));
    }
    settle(&nodes, (1, 2, 2, 0));
    let now = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let seated: Vec<&str> = roles(&nodes, now)
        .iter()
        .zip(domains)
        .filter(|(r, _)| *r == "leader" || *r == "voter")
        .map(|(_, d)| d)
        .collect();
    let mut spread = seated.clone();
    spread.sort();
    assert_eq!(spread, ["a", "b", "c"], "voters by domain: {seated:?}");
    stop_all(nodes);
}

fn stop_all(nodes: Vec<Running>) {
    for mut n in nodes {
        n.signal(libc::SIGTERM);
        let out = n.wait(T);
        assert!(!out.stderr.contains("panicked at"), "{}", out.describe());
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
    let voter = roles(&nodes, now).iter().position(|r| r == "voter").expect("a voter");
    let mut victim = nodes.remove(voter);
    victim.signal(libc::SIGKILL);
    let _ = victim.wait(T);
    settle(&nodes, (1, 4, 4, 2));
    stop_all(nodes);
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
        status(ls, start).is_some_and(|s| s.role == "voter" && s.leader == "n1" && s.voters == 3)
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
