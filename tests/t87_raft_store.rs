//! The Raft core seen through a `store.kv.raft` store, between real
//! `wippy run` processes: the Lua store API on one node; committed writes
//! surviving a killed leader, a full-cluster restart and a wiped disk; and
//! a partitioned minority that cannot commit while the majority can.
//!
//! The `kv` fixture runs a writer on every node that resumes its counter
//! from the store and commits one increment per 100 ms, printing
//! `kv resumed <n>`, `kv wrote <n>` or `kv error <why>`.

#[path = "common/harness.rs"]
mod common;
#[path = "common/netns.rs"]
mod netns;
#[path = "common/raft.rs"]
mod raft;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use raft::{fast, last_wrote, resumed, settle, status};

const T: Duration = Duration::from_secs(30);

#[test]
fn the_store_api_answers_from_lua_on_a_one_node_cluster() {
    let app = app_fixture("kvapi");
    let mut n = cluster_node(&app, "solo", free_port(), None, SECRET, &[]);
    let out = n.wait(T);
    assert!(out.stdout.contains("store ok"), "{}", out.describe());
    assert!(out.stdout.contains("lock ok"), "{}", out.describe());
    assert!(out.stdout.contains("names ok"), "{}", out.describe());
    assert_eq!(out.code, Some(0), "{}", out.describe());
}

#[test]
fn without_the_cluster_a_store_is_unavailable_not_missing() {
    let out = run(&["run", p(&app_fixture("kvapi"))], T);
    assert!(
        out.stdout
            .contains("store unavailable: UNAVAILABLE store app:kv: replicated stores need cluster.enabled: true"),
        "{}",
        out.describe()
    );
}

/// A node of the `kv` fixture with its data in `dir`, so a restart finds it.
fn kv_node(name: &str, port: u16, join: Option<u16>, dir: &Path) -> Running {
    kv_node_with(name, port, join, dir, &[])
}

fn kv_node_with(name: &str, port: u16, join: Option<u16>, dir: &Path, more: &[&str]) -> Running {
    let mut extra = fast();
    extra.extend(more.iter().map(|s| s.to_string()));
    extra.push(format!("node.data_dir={}", dir.display()));
    cluster_node(&app_fixture("kv"), name, port, join, SECRET, &extra)
}

/// Waits until `node` has written at least `n` since `since`.
fn wait_wrote(node: &mut Running, what: &str, since: Instant, n: u64) {
    node.wait_until(what, T, |ls| last_wrote(ls, since).is_some_and(|w| w >= n));
}

/// Whether a node that printed `committed` as its last commit may resume
/// at `found`: the same, or one more when its last write committed while
/// the node was stopping, too late to be printed.
fn in_flight(found: u64, committed: u64) -> bool {
    found == committed || found == committed + 1
}

/// Stops `node` gracefully and returns the last value it committed.
fn stop(mut node: Running) -> u64 {
    node.signal(libc::SIGTERM);
    let out = node.wait(T);
    assert!(!out.stderr.contains("panicked at"), "{}", out.describe());
    last_wrote(&node.timed_lines(), Instant::now() - Duration::from_secs(3600)).unwrap_or(0)
}

/// Nodes of the `kv` fixture that keep their data directories across
/// restarts; the first bootstraps, the others join it.
struct KvCluster {
    names: Vec<String>,
    dirs: Vec<PathBuf>,
    ports: Vec<u16>,
    more: Vec<&'static str>,
}

impl KvCluster {
    fn new(names: &[&str], more: &[&'static str]) -> KvCluster {
        KvCluster {
            names: names.iter().map(|n| n.to_string()).collect(),
            dirs: names.iter().map(|_| temp_dir("kv-data")).collect(),
            ports: names.iter().map(|_| free_port()).collect(),
            more: more.to_vec(),
        }
    }

    /// Starts node `i` (again, after a restart, on the same directory).
    fn start(&self, i: usize) -> Running {
        let join = (i > 0).then_some(self.ports[0]);
        kv_node_with(&self.names[i], self.ports[i], join, &self.dirs[i], &self.more)
    }

    /// Starts every node and waits until they all vote under one leader.
    fn form(&self) -> Vec<Running> {
        let mut nodes = vec![self.start(0)];
        let first = format!("raft leader {}", self.names[0]);
        nodes[0].wait_line(T, |l| l.starts_with(&first));
        nodes.extend((1..self.names.len()).map(|i| self.start(i)));
        settle(&nodes, (1, self.names.len() - 1, 0, 0), T);
        nodes
    }
}

#[test]
fn committed_writes_survive_a_killed_leader_a_full_restart_and_a_crash_of_all() {
    let names = ["k1", "k2", "k3"];
    let kv = KvCluster::new(&names, &[]);
    let start = |i: usize| kv.start(i);
    let mut nodes = kv.form();
    let t0 = Instant::now();
    for n in nodes.iter_mut() {
        wait_wrote(n, "writes on every node", t0, 3);
    }

    // Kill the leader: the two others elect a new one and keep committing.
    let now = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    let leader = raft::roles(&nodes, now).iter().position(|r| r == "leader").expect("a leader");
    let mut victim = nodes.remove(leader);
    victim.signal(libc::SIGKILL);
    let _ = victim.wait(T);
    let killed = Instant::now();
    let before_kill = last_wrote(&victim.timed_lines(), t0).unwrap_or(0);
    for n in nodes.iter_mut() {
        let was = last_wrote(&n.timed_lines(), t0).unwrap_or(0);
        wait_wrote(n, "writes resume after the leader is killed", killed, was + 3);
    }

    // The killed node restarts on its disk and finds its last commit.
    let back = Instant::now();
    let mut restarted = start(leader);
    restarted.wait_until("the killed node resumes", T, |ls| resumed(ls, back).is_some());
    let found = resumed(&restarted.timed_lines(), back).unwrap();
    assert!(found >= before_kill, "{} resumed at {found}, had committed {before_kill}", names[leader]);
    nodes.insert(leader, restarted);
    settle(&nodes, (1, 2, 0, 0), T);

    // Stop every node, start them all again: nothing committed is lost.
    let committed: Vec<u64> = nodes.drain(..).map(stop).collect();
    let again = Instant::now();
    let mut nodes: Vec<Running> = (0..3).map(start).collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.wait_until("resumed after the full restart", T, |ls| resumed(ls, again).is_some());
        let found = resumed(&n.timed_lines(), again).unwrap();
        assert!(in_flight(found, committed[i]), "{} resumed at {found}, had committed {}", names[i], committed[i]);
        wait_wrote(n, "writing again after the full restart", again, committed[i] + 1);
    }

    // SIGKILL all three at once: what a writer saw committed is on disk
    // (a write is acknowledged only after the log's fsync on a quorum).
    let acked: Vec<u64> = nodes
        .drain(..)
        .map(|mut n| {
            n.signal(libc::SIGKILL);
            let _ = n.wait(T);
            last_wrote(&n.timed_lines(), again).unwrap_or(0)
        })
        .collect();
    let after_crash = Instant::now();
    let mut nodes: Vec<Running> = (0..3).map(start).collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.wait_until("resumed after the crash of every node", T, |ls| resumed(ls, after_crash).is_some());
        let found = resumed(&n.timed_lines(), after_crash).unwrap();
        assert!(in_flight(found, acked[i]), "{} resumed at {found} after the crash, had seen {}", names[i], acked[i]);
    }
    nodes.into_iter().for_each(|n| {
        stop(n);
    });
}

/// The log is compacted early (a snapshot every 40 entries, 5 kept
/// behind it), so the wiped node cannot be sent the log from its start:
/// it must receive a snapshot over the mesh and then the rest of the log.
#[test]
fn a_node_restarted_with_a_wiped_disk_catches_up_from_a_snapshot() {
    let compact = ["cluster.raft.snapshot_threshold=40", "cluster.raft.trailing_logs=5"];
    let kv = KvCluster::new(&["w1", "w2", "w3"], &compact);
    let dirs = &kv.dirs;
    let start = |i: usize| kv.start(i);
    let mut nodes = kv.form();
    let t0 = Instant::now();
    wait_wrote(&mut nodes[2], "w3 writes", t0, 5);
    nodes[0].wait_until("several snapshots' worth of log", T, |ls| status(ls, t0).is_some_and(|s| s.applied >= 150));

    // w3 loses its disk while it is down.
    let w3 = nodes.pop().unwrap();
    let committed = stop(w3);
    std::fs::remove_dir_all(&dirs[2]).unwrap();
    std::fs::create_dir_all(&dirs[2]).unwrap();
    let target = status(&nodes[0].timed_lines(), Instant::now() - Duration::from_secs(1)).unwrap().applied;

    let back = Instant::now();
    let mut w3 = start(2);
    w3.wait_until("w3 applies the log again", T, |ls| {
        status(ls, back).is_some_and(|s| s.applied >= target && s.role == "voter")
    });
    w3.wait_until("w3 resumes", T, |ls| resumed(ls, back).is_some());
    let found = resumed(&w3.timed_lines(), back).unwrap();
    assert!(in_flight(found, committed), "w3 resumed at {found}, had committed {committed}");
    wait_wrote(&mut w3, "w3 writes again", back, committed + 1);
    w3.signal(libc::SIGTERM);
    let out = w3.wait(T);
    assert!(out.stderr.contains("installed a snapshot from the leader"), "{}", out.describe());
    nodes.into_iter().for_each(|n| {
        stop(n);
    });
}

/// Starts node `<prefix><i>` of fixture `app` inside namespace `i` of
/// `lab`; every node but the first joins node 1.
fn node_in(lab: &netns::Lab, i: usize, app: &str, prefix: &str) -> Running {
    lab.wippy(i, &app_fixture(app), &format!("{prefix}{i}"), 1, &fast())
}

/// A `kv` node `p<i>` in namespace `i`.
fn start_in(lab: &netns::Lab, i: usize) -> Running {
    node_in(lab, i, "kv", "p")
}

/// The leader is cut off: it cannot commit on its own, while the two
/// others elect a leader and keep committing. After healing, the old
/// leader follows and commits again.
#[test]
fn a_partitioned_minority_cannot_commit_and_the_majority_can() {
    // Declared first so it is dropped last, after the nodes are killed.
    let Some(lab) = netns::Lab::or_skip(3, "a_partitioned_minority_cannot_commit_and_the_majority_can") else { return };
    let mut nodes = vec![start_in(&lab, 1)];
    nodes[0].wait_line(T, |l| l.starts_with("raft leader p1"));
    nodes.push(start_in(&lab, 2));
    nodes.push(start_in(&lab, 3));
    settle(&nodes, (1, 2, 0, 0), T);
    let t0 = Instant::now();
    for n in nodes.iter_mut() {
        wait_wrote(n, "writes on every node", t0, 3);
    }
    let now = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    let leader = raft::roles(&nodes, now).iter().position(|r| r == "leader").expect("a leader");

    lab.cut(leader + 1);
    let cut = Instant::now();
    for (i, n) in nodes.iter_mut().enumerate().filter(|(i, _)| *i != leader) {
        let was = last_wrote(&n.timed_lines(), t0).unwrap_or(0);
        wait_wrote(n, &format!("p{} commits in the majority", i + 1), cut, was + 5);
    }
    // A write in flight at the cut may still print just after it; none
    // started later can commit.
    let settled = cut + Duration::from_millis(500);
    std::thread::sleep(Duration::from_secs(2));
    let minority = &nodes[leader];
    let lines = minority.timed_lines();
    assert_eq!(
        last_wrote(&lines, settled),
        None,
        "the cut-off node committed a write:\n{}",
        minority.lines().join("\n")
    );
    assert!(
        lines.iter().any(|(t, l)| *t >= settled && l.starts_with("kv error")),
        "the cut-off node reported no failed write:\n{}",
        minority.lines().join("\n")
    );

    lab.heal(leader + 1);
    let healed = Instant::now();
    let was = last_wrote(&lines, t0).unwrap_or(0);
    wait_wrote(&mut nodes[leader], "the old leader commits again after healing", healed, was + 1);
    settle(&nodes, (1, 2, 0, 0), T);
    nodes.into_iter().for_each(|n| {
        stop(n);
    });
}

/// A leader stopped gracefully hands leadership to a caught-up voter
/// before it goes, and the others keep committing under the new leader.
#[test]
fn a_leader_stopping_gracefully_hands_leadership_over() {
    let kv = KvCluster::new(&["g1", "g2", "g3"], &[]);
    let mut nodes = kv.form();
    let now = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    let li = raft::roles(&nodes, now).iter().position(|r| r == "leader").expect("a leader");
    let mut leader = nodes.remove(li);
    leader.signal(libc::SIGTERM);
    let out = leader.wait(T);
    assert!(out.stderr.contains("handed leadership over before stopping"), "{}", out.describe());
    let stopped = Instant::now();
    for n in nodes.iter_mut() {
        let was = last_wrote(&n.timed_lines(), now).unwrap_or(0);
        wait_wrote(n, "writes under the new leader", stopped, was + 2);
    }
    nodes.into_iter().for_each(|n| {
        stop(n);
    });
}

/// A lock held by a process of a node that dies is released by the
/// leader once gossip declares that node gone; the next holder gets a
/// larger fencing token, and only one node gets it.
#[test]
fn a_dead_nodes_lock_and_consistent_name_are_released() {
    let app = app_fixture("lock");
    let ports = [free_port(), free_port(), free_port()];
    let mut x1 = cluster_node(&app, "x1", ports[0], None, SECRET, &fast());
    let held = x1.wait_line(T, |l| l.starts_with("lock held "));
    let t1: u64 = held["lock held ".len()..].parse().unwrap();
    let mut nodes = vec![x1];
    for (i, port) in ports.iter().enumerate().skip(1) {
        let mut n = cluster_node(&app, &format!("x{}", i + 1), *port, Some(ports[0]), SECRET, &fast());
        n.wait_line(T, |l| l == "lock busy");
        nodes.push(n);
    }
    // x2 and x3 must vote before x1 goes, so the cluster outlives it.
    settle(&nodes, (1, 2, 0, 0), T);
    // The CONSISTENT name x1's holder registered resolves on the others.
    for n in nodes.iter_mut().skip(1) {
        n.wait_line(T, |l| l.starts_with("svc {x1@"));
    }
    let mut x1 = nodes.remove(0);
    x1.signal(libc::SIGKILL);
    let _ = x1.wait(T);
    let killed = Instant::now();
    let taken = |n: &Running| {
        n.timed_lines()
            .iter()
            .filter(|(t, _)| *t >= killed)
            .find_map(|(_, l)| l.strip_prefix("lock taken ")?.parse::<u64>().ok())
    };
    let deadline = Instant::now() + T;
    while nodes.iter().all(|n| taken(n).is_none()) {
        assert!(Instant::now() < deadline, "nobody took the lock of the dead node");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    // The name went with its node.
    for n in nodes.iter_mut() {
        n.wait_until("svc no longer resolves", T, |ls| ls.iter().any(|(t, l)| *t >= killed && l == "svc -"));
    }
    let winners: Vec<u64> = nodes.iter().filter_map(taken).collect();
    assert_eq!(winners.len(), 1, "exactly one new holder: {winners:?}");
    assert!(winners[0] > t1, "the new token {} is larger than {t1}", winners[0]);
    nodes.into_iter().for_each(|n| {
        stop(n);
    });
}

/// A node with `raft.role: client` runs no Raft replica; its store writes
/// and reads go to a member, which redirects them to the leader.
#[test]
fn a_client_node_outside_the_configuration_reads_and_writes() {
    let names = ["c1", "c2"];
    let dirs: Vec<PathBuf> = names.iter().map(|_| temp_dir("kv-data")).collect();
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let mut nodes = vec![kv_node(names[0], ports[0], None, &dirs[0])];
    nodes[0].wait_line(T, |l| l.starts_with("raft leader c1"));
    nodes.push(kv_node(names[1], ports[1], Some(ports[0]), &dirs[1]));
    settle(&nodes, (1, 0, 1, 0), T);
    let dir = temp_dir("kv-data");
    let mut client = kv_node_with("cx", free_port(), Some(ports[0]), &dir, &["cluster.raft.role=client"]);
    client.wait_line(T, |l| l == "raft unavailable");
    let t0 = Instant::now();
    wait_wrote(&mut client, "the client commits through the leader", t0, 5);
    assert_eq!(resumed(&client.timed_lines(), client.started), Some(0));
    nodes.push(client);
    nodes.into_iter().for_each(|n| {
        stop(n);
    });
}

/// A client node keeps no replica but follows the members' names: a
/// CONSISTENT name registered on a member resolves there, and its removal
/// (the holder's node died) reaches it too.
#[test]
fn a_client_node_resolves_consistent_names_it_follows_from_the_members() {
    let app = app_fixture("lock");
    let ports = [free_port(), free_port(), free_port()];
    let mut nodes = vec![cluster_node(&app, "x1", ports[0], None, SECRET, &fast())];
    nodes[0].wait_line(T, |l| l.starts_with("lock held "));
    for (i, port) in ports.iter().enumerate().skip(1) {
        nodes.push(cluster_node(&app, &format!("x{}", i + 1), *port, Some(ports[0]), SECRET, &fast()));
    }
    settle(&nodes, (1, 2, 0, 0), T);
    let mut client_args = fast();
    client_args.push("cluster.raft.role=client".into());
    let mut client = cluster_node(&app, "x9", free_port(), Some(ports[1]), SECRET, &client_args);
    client.wait_line(T, |l| l.starts_with("svc {x1@"));
    let killed = Instant::now();
    nodes[0].kill();
    client.wait_until("the name's removal reaches the client", T, |ls| {
        ls.iter().any(|(t, l)| *t > killed && l == "svc -")
    });
    nodes.push(client);
    nodes.into_iter().skip(1).for_each(|n| {
        stop(n);
    });
}

/// A `lock` node `x<i>` in namespace `i`.
fn lock_node_in(lab: &netns::Lab, i: usize) -> Running {
    node_in(lab, i, "lock", "x")
}

/// The holder's node is cut off from the majority: the holder is told its
/// lock is lost (CANCEL, `lock L lost: ...`) before the majority gives the
/// lock to another process, whose fencing token is larger.
#[test]
fn a_cut_off_holder_learns_it_lost_the_lock_before_anyone_else_takes_it() {
    // Declared first so it is dropped last, after the nodes are killed.
    let Some(lab) = netns::Lab::or_skip(3, "a_cut_off_holder_learns_it_lost_the_lock_before_anyone_else_takes_it")
    else {
        return;
    };
    let mut nodes = vec![lock_node_in(&lab, 1)];
    let held = nodes[0].wait_line(T, |l| l.starts_with("lock held "));
    let t1: u64 = held["lock held ".len()..].parse().unwrap();
    nodes.push(lock_node_in(&lab, 2));
    nodes.push(lock_node_in(&lab, 3));
    settle(&nodes, (1, 2, 0, 0), T);

    lab.cut(1);
    let cut = Instant::now();
    let at = |n: &Running, prefix: &str| {
        n.timed_lines().iter().find(|(t, l)| *t >= cut && l.starts_with(prefix)).map(|(t, l)| (*t, l.clone()))
    };
    let deadline = Instant::now() + T;
    while at(&nodes[1], "lock taken ").is_none() && at(&nodes[2], "lock taken ").is_none() {
        assert!(Instant::now() < deadline, "the majority never took the lock");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (lost_at, lost) = at(&nodes[0], "lock lost: ").expect("the cut-off holder was told it lost the lock");
    assert!(lost.contains("no contact with a Raft majority"), "{lost}");
    let (taken_at, taken) = at(&nodes[1], "lock taken ").or_else(|| at(&nodes[2], "lock taken ")).unwrap();
    assert!(lost_at < taken_at, "the holder heard of the loss after the lock was handed on");
    let t2: u64 = taken["lock taken ".len()..].parse().unwrap();
    assert!(t2 > t1, "the new token {t2} is larger than {t1}");
    lab.heal(1);
    nodes.into_iter().for_each(|n| {
        stop(n);
    });
}

/// Node `x<i>` of the `lock` fixture in namespace `i`, joining `x2`, with
/// `more` settings.
fn lock_node_joining_2(lab: &netns::Lab, i: usize, more: &[&str]) -> Running {
    let mut extra = fast();
    extra.extend(more.iter().map(|s| s.to_string()));
    lab.wippy(i, &app_fixture("lock"), &format!("x{i}"), 2, &extra)
}

/// The same guarantee for a holder on a client node (outside the Raft
/// configuration, so no leader's appends reach it): it confirms contact
/// with reads, and once cut off it is told of the loss before a member
/// takes the lock.
#[test]
fn a_cut_off_holder_on_a_client_node_learns_it_lost_the_lock_first() {
    let test = "a_cut_off_holder_on_a_client_node_learns_it_lost_the_lock_first";
    let Some(lab) = netns::Lab::or_skip(4, test) else { return };
    let member = ["cluster.raft.bootstrap_expect=3"];
    let mut nodes = vec![lock_node_joining_2(&lab, 2, &member)];
    nodes.push(lock_node_joining_2(&lab, 3, &member));
    nodes.push(lock_node_joining_2(&lab, 4, &member));
    settle(&nodes, (1, 2, 0, 0), T);
    // x1 (the fixture's holder) is a client.
    nodes.insert(0, lock_node_joining_2(&lab, 1, &["cluster.raft.role=client"]));
    let held = nodes[0].wait_line(T, |l| l.starts_with("lock held "));
    let t1: u64 = held["lock held ".len()..].parse().unwrap();
    // Holding steadily: no false loss while connected.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!nodes[0].lines().iter().any(|l| l.starts_with("lock lost")), "{:?}", nodes[0].lines());

    lab.cut(1);
    let cut = Instant::now();
    let at = |n: &Running, prefix: &str| {
        n.timed_lines().iter().find(|(t, l)| *t >= cut && l.starts_with(prefix)).map(|(t, l)| (*t, l.clone()))
    };
    let deadline = Instant::now() + T;
    let taken = |nodes: &[Running]| nodes[1..].iter().find_map(|n| at(n, "lock taken "));
    while taken(&nodes).is_none() {
        assert!(Instant::now() < deadline, "the members never took the lock");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (lost_at, lost) = at(&nodes[0], "lock lost: ").expect("the cut-off client holder was told it lost the lock");
    assert!(lost.contains("no contact with a Raft majority"), "{lost}");
    let (taken_at, taken_line) = taken(&nodes).unwrap();
    assert!(lost_at < taken_at, "the holder heard of the loss after the lock was handed on");
    let t2: u64 = taken_line["lock taken ".len()..].parse().unwrap();
    assert!(t2 > t1, "the new token {t2} is larger than {t1}");
    lab.heal(1);
    nodes.into_iter().for_each(|n| {
        stop(n);
    });
}
