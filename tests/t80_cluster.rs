//! Gossip membership between `wippy run` processes on one host: nodes join
//! through a seed, see a killed node go and come back on a new address, and
//! a node with another secret never gets in.

#[path = "common/harness.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(10);

fn node(name: &str, port: u16, join: Option<u16>, secret: &str) -> Running {
    cluster_node(&app_fixture("cluster"), name, port, join, secret, &[])
}

/// The size from the last `size N ...` line printed at or after `since`.
fn last_size(lines: &[(Instant, String)], since: Instant) -> Option<usize> {
    lines
        .iter()
        .rev()
        .filter(|(t, _)| *t >= since)
        .find_map(|(_, l)| l.strip_prefix("size ")?.split(' ').next()?.parse().ok())
}

fn wait_size(node: &mut Running, size: usize, since: Instant) {
    node.wait_until(&format!("size {size}"), T, |ls| last_size(ls, since) == Some(size));
}

#[test]
fn three_nodes_gossip_and_a_stranger_stays_out() {
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let mut n1 = node("n1", ports[0], None, SECRET);
    // Let the seed bind before the others announce to it (they retry
    // anyway, with backoff).
    n1.wait_line(T, |l| l.starts_with("size "));
    assert!(n1.lines().iter().any(|l| l == &format!("addr 127.0.0.1:{}", ports[0])), "{:?}", n1.lines());
    let mut n2 = node("n2", ports[1], Some(ports[0]), SECRET);
    let mut n3 = node("n3", ports[2], Some(ports[0]), SECRET);
    let start = Instant::now();
    for n in [&mut n1, &mut n2, &mut n3] {
        wait_size(n, 3, start);
    }
    let line = n2.lines().into_iter().rev().find(|l| l.starts_with("size 3")).unwrap_or_default();
    assert_eq!(line, "size 3 n2,n1,n3", "this node first, then the others by name");

    n3.signal(libc::SIGKILL);
    let _ = n3.wait(T);
    let killed = Instant::now();
    wait_size(&mut n1, 2, killed);
    wait_size(&mut n2, 2, killed);

    // The same node comes back on another address (a rescheduled container)
    // and everyone converges on the new one.
    let mut n3 = node("n3", free_port(), Some(ports[1]), SECRET);
    let back = Instant::now();
    for n in [&mut n1, &mut n2, &mut n3] {
        wait_size(n, 3, back);
    }
    n3.signal(libc::SIGKILL);
    let _ = n3.wait(T);
    let killed = Instant::now();
    wait_size(&mut n1, 2, killed);
    wait_size(&mut n2, 2, killed);

    // Another secret: its announces do not open, so it stays alone.
    let mut stranger = node("n4", ports[3], Some(ports[0]), OTHER_SECRET);
    let joined = Instant::now();
    stranger.wait_line(T, |l| l.starts_with("size "));
    std::thread::sleep(Duration::from_secs(3));
    let sizes = |n: &Running| -> Vec<usize> {
        n.timed_lines()
            .iter()
            .filter(|(t, _)| *t >= joined)
            .filter_map(|(_, l)| l.strip_prefix("size ")?.split(' ').next()?.parse().ok())
            .collect()
    };
    let s4 = sizes(&stranger);
    assert!(s4.len() >= 10 && s4.iter().all(|&s| s == 1), "stranger sizes: {s4:?}");
    for n in [&n1, &n2] {
        let s = sizes(n);
        assert!(!s.is_empty() && s.iter().all(|&s| s == 2), "member sizes: {s:?}");
    }

    for mut n in [n1, n2, stranger] {
        n.signal(libc::SIGTERM);
        let out = n.wait(T);
        assert!(!out.stderr.contains("panicked at"), "{}", out.describe());
    }
}

#[test]
fn cluster_without_a_secret_is_refused() {
    let app = app_fixture("cluster");
    let port = free_port().to_string();
    let bind = format!("cluster.membership.bind_port={port}");
    let out = run(
        &[
            "run",
            p(&app),
            "--set",
            "cluster.enabled=true",
            "--set",
            "cluster.membership.bind_addr=127.0.0.1",
            "--set",
            &bind,
        ],
        T,
    );
    out.expect_code(2);
    assert!(out.stderr.contains("needs a gossip secret"), "{}", out.describe());
}

/// A gossip port that is taken stops start-up with one line that names the
/// address and the OS error once.
#[test]
fn a_taken_gossip_port_is_reported_once() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = run(
        &[
            "run",
            p(&app_fixture("cluster")),
            "--set",
            "cluster.enabled=true",
            "--set",
            "cluster.membership.bind_addr=127.0.0.1",
            "--set",
            &format!("cluster.membership.bind_port={port}"),
            "--set",
            &format!("cluster.membership.secret_key={SECRET}"),
        ],
        T,
    );
    out.expect_code(2);
    let line = out.stderr.lines().find(|l| l.starts_with("wippy: ")).unwrap_or_default().to_owned();
    assert!(line.contains(&format!("gossip socket 127.0.0.1:{port}")), "{}", out.describe());
    assert_eq!(line.matches("in use").count(), 1, "{line}");
}
