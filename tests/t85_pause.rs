//! A stalled node is not a dead one: with the default failure-detection
//! settings, a `wippy run` process frozen for 2 s (SIGSTOP, standing in for
//! a long GC-like pause, a VM migration or an overloaded host) may be
//! suspected by the others, but must never be declared dead, and must be
//! alive again for everyone once it resumes.

#[path = "common/harness.rs"]
mod common;
#[path = "common/members.rs"]
mod members;

use std::time::{Duration, Instant};

use common::*;
use members::*;

const T: Duration = Duration::from_secs(30);
const NAMES: [&str; 3] = ["n1", "n2", "n3"];
/// How long the node is frozen; the defaults are chosen to survive this.
const PAUSE: Duration = Duration::from_secs(2);
/// How long after it resumes the others must still list it: long enough for
/// a death decided during the pause to have spread.
const AFTER: Duration = Duration::from_secs(3);

/// Node `name` with the default failure-detection settings: those are what
/// this test is about.
fn node(name: &str, port: u16, join: Option<u16>) -> Running {
    cluster_node(&app_fixture("partition"), name, port, join, SECRET, &[])
}

/// Waits until the last view printed since `since` satisfies `pred`.
fn wait_view(node: &mut Running, what: &str, since: Instant, pred: impl Fn(&View) -> bool) {
    node.wait_until(what, T, |ls| last_view(ls, since).is_some_and(|v| pred(&v)));
}

#[test]
fn a_node_paused_for_two_seconds_is_never_declared_dead() {
    let ports = [free_port(), free_port(), free_port()];
    let mut n1 = node("n1", ports[0], None);
    n1.wait_line(T, |l| l.starts_with("members "));
    let mut n2 = node("n2", ports[1], Some(ports[0]));
    let mut n3 = node("n3", ports[2], Some(ports[0]));
    let started = Instant::now();
    for n in [&mut n1, &mut n2, &mut n3] {
        wait_view(n, "all three alive", started, |v| all_alive(v, &NAMES));
    }

    let stopped = Instant::now();
    n3.signal(libc::SIGSTOP);
    std::thread::sleep(PAUSE);
    n3.signal(libc::SIGCONT);
    std::thread::sleep(AFTER);
    let watched = Instant::now();

    for (n, who) in [(&n1, "n1"), (&n2, "n2")] {
        let seen = views(&n.timed_lines(), stopped, Some(watched));
        // A view every 100 ms: make sure the window was actually observed.
        assert!(seen.len() >= 20, "{who} printed only {} views in {:?}", seen.len(), watched - stopped);
        let states = history(&seen, "n3");
        // When it went, relative to the stop, for tuning the defaults.
        let gone = n
            .timed_lines()
            .iter()
            .filter(|(t, _)| *t >= stopped)
            .find(|(_, l)| parse(l).is_some_and(|v| !v.contains_key("n3")))
            .map(|(t, _)| *t - stopped);
        assert!(!states.contains(&"absent"), "{who} dropped the paused n3 {gone:?} after the stop (states {states:?})");
    }
    for n in [&mut n1, &mut n2, &mut n3] {
        wait_view(n, "all three alive after the pause", watched, |v| all_alive(v, &NAMES));
    }

    for mut n in [n1, n2, n3] {
        n.signal(libc::SIGTERM);
        let out = n.wait(T);
        assert!(!out.stderr.contains("panicked at"), "{}", out.describe());
    }
}
