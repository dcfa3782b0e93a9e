//! A network partition between real `wippy run` processes: three nodes, each
//! in its own network namespace on a private bridge. One node is cut off;
//! the two others must first suspect it and then declare it dead (in that
//! order), it must see both of them go the same way, and once the network
//! heals all three must agree again that everyone is alive.
//!
//! Namespaces need root (or CAP_NET_ADMIN + CAP_SYS_ADMIN); where they
//! cannot be created the test says why and passes without running. A
//! missing `ip` command is a failure: install iproute2.

#[path = "common/harness.rs"]
mod common;
#[path = "common/members.rs"]
mod members;
#[path = "common/netns.rs"]
mod netns;

use std::time::{Duration, Instant};

use common::*;
use members::*;
use netns::Lab;

/// Bound for every wait: far above the ~2 s the failure detector needs, so
/// a slow CI host does not fail the test, yet a stuck cluster does.
const T: Duration = Duration::from_secs(30);
const NAMES: [&str; 3] = ["n1", "n2", "n3"];
/// Each namespace has its own ports, so every node can use the same one.
const GOSSIP_PORT: u16 = 7946;

/// Starts node `i` in its namespace, gossip and internode bound to its
/// address; every node but the first joins the first.
fn start(lab: &Lab, i: usize) -> Running {
    let join = (i != 1).then(|| format!("{}:{GOSSIP_PORT}", lab.addr(1)));
    let args = cluster_args(&app_fixture("partition"), &format!("n{i}"), &lab.addr(i), GOSSIP_PORT, join, SECRET, &[]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Running::start_cmd(lab.command_in(i, &wippy_cmd(&refs)))
}

/// Waits until the last view printed since `since` satisfies `pred`.
fn wait_view(node: &mut Running, what: &str, since: Instant, pred: impl Fn(&View) -> bool) {
    node.wait_until(what, T, |ls| last_view(ls, since).is_some_and(|v| pred(&v)));
}

#[test]
fn a_cut_off_node_is_suspected_then_dead_and_rejoins_after_healing() {
    // Declared first so it is dropped last, after the nodes are killed.
    let Some(lab) = Lab::or_skip(3, "a_cut_off_node_is_suspected_then_dead_and_rejoins_after_healing") else { return };
    let mut n1 = start(&lab, 1);
    // Let the seed bind before the others announce to it (they retry anyway).
    n1.wait_line(T, |l| l.starts_with("members "));
    let mut n2 = start(&lab, 2);
    let mut n3 = start(&lab, 3);
    let started = Instant::now();
    for n in [&mut n1, &mut n2, &mut n3] {
        wait_view(n, "all three alive", started, |v| all_alive(v, &NAMES));
    }

    lab.cut(3);
    let cut = Instant::now();
    wait_view(&mut n1, "n3 gone on n1", cut, |v| !v.contains_key("n3"));
    wait_view(&mut n2, "n3 gone on n2", cut, |v| !v.contains_key("n3"));
    wait_view(&mut n3, "n1 and n2 gone on n3", cut, |v| v.keys().eq(["n3"]));
    // Keep the partition a little longer: a dead member must stay dead
    // while nothing can be heard from it.
    std::thread::sleep(Duration::from_secs(1));
    lab.heal(3);
    let healed = Instant::now();

    // Alive (for the lines printed before the cut took effect), then
    // suspect, then gone, and nothing else while the partition lasted: a
    // member is never dropped without first being suspected, and never
    // comes back while it cannot be heard.
    for (node, who, name) in [(&n1, "n1", "n3"), (&n2, "n2", "n3"), (&n3, "n3", "n1"), (&n3, "n3", "n2")] {
        let seen = views(&node.timed_lines(), cut, Some(healed));
        let states: Vec<&str> = history(&seen, name).into_iter().skip_while(|s| *s == "alive").collect();
        assert_eq!(states, ["suspect", "absent"], "{who}'s view of {name} during the partition:\n{seen:#?}");
    }

    // n3 was declared dead, so it comes back under a renewed identity once
    // its announces to the seed get through again.
    for n in [&mut n1, &mut n2, &mut n3] {
        wait_view(n, "all three alive again after healing", healed, |v| all_alive(v, &NAMES));
    }

    for mut n in [n1, n2, n3] {
        n.signal(libc::SIGTERM);
        let out = n.wait(T);
        assert!(!out.stderr.contains("panicked at"), "{}", out.describe());
    }
}
