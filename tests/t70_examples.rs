//! Runs every example under `examples/` through the binary and checks what
//! it prints (the README of each example shows the same command).

#[path = "common/harness.rs"]
mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);
/// How long a three-node example may take to get where its test waits.
const LONG: Duration = Duration::from_secs(60);

/// `wippy run examples/<name>` (the README command, minus cargo).
fn run_example(name: &str) -> Output {
    run(&["run", p(&example(name))], T)
}

fn is_pid(s: &str) -> bool {
    s.starts_with('{') && s.ends_with('}') && s.contains("@app:processes|0x")
}

#[test]
fn every_example_has_a_readme_with_its_command_and_passes_check() {
    for name in ["hello", "ping-pong", "supervisor"] {
        let readme = std::fs::read_to_string(example(name).join("README.md")).expect("README.md");
        let cmd = format!("cargo run --release -- run examples/{name}");
        assert!(readme.contains(&cmd), "examples/{name}/README.md should show `{cmd}`");
        let out = run(&["check", p(&example(name))], T);
        out.expect_code(0);
    }
}

#[test]
fn hello_prints_a_greeting_with_its_pid_and_exits_0() {
    let out = run_example("hello");
    out.expect_code(0);
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "{}", out.describe());
    let rest = lines[0].strip_prefix("Hello from wippy! I am process ").unwrap_or_else(|| panic!("{}", out.describe()));
    let (pid, node) = rest.split_once(" on node ").unwrap_or_else(|| panic!("{}", out.describe()));
    assert!(is_pid(pid), "not a pid: {pid}");
    assert!(pid.starts_with(&format!("{{{node}@")), "the pid {pid} should carry the node id {node}");
}

#[test]
fn ping_pong_exchanges_all_messages_and_exits_0() {
    let out = run_example("ping-pong");
    out.expect_code(0);
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{}", out.describe());
    // ping {pid} -> pong {pid}: 1000 round trips
    let head: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(head.len(), 8, "{}", out.describe());
    assert_eq!((head[0], head[2], head[3]), ("ping", "->", "pong"), "{}", out.describe());
    assert_eq!(&head[5..], &["1000", "round", "trips"], "{}", out.describe());
    let (ping, pong) = (head[1], head[4].trim_end_matches(':'));
    assert!(is_pid(ping) && is_pid(pong) && ping != pong, "{}", out.describe());
    assert!(lines[1].starts_with("done: 1000 round trips in "), "{}", out.describe());
    assert_eq!(lines[2], "pong answered 1000 pings", "{}", out.describe());
}

#[test]
fn supervisor_restarts_the_flaky_service_and_respawns_failed_workers() {
    let mut node = Running::start(&["run", p(&example("supervisor"))]);
    node.wait_until("3 flaky starts and a respawn of each worker", T, |ls| {
        let flaky = ls.iter().filter(|(_, l)| l.starts_with("flaky: up as {")).count();
        let failed = ls.iter().filter(|(_, l)| l.starts_with("pool: w") && l.contains(" failed: ")).count();
        flaky >= 3 && failed >= 3
    });
    node.signal(libc::SIGTERM);
    let out = node.wait(T);
    out.expect_code(0);
    assert!(!out.stderr.contains("panicked at"), "{}", out.describe());
    let lines = out.lines();

    // flaky: each start has a new pid, and the gaps between starts grow
    let flaky: Vec<(std::time::Instant, String)> = node
        .timed_lines()
        .into_iter()
        .filter_map(|(t, l)| l.strip_prefix("flaky: up as ").map(|pid| (t, pid.to_string())))
        .collect();
    assert!(flaky.len() >= 3, "{}", out.describe());
    let pids: std::collections::HashSet<&str> = flaky.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(pids.len(), flaky.len(), "a restarted service gets a new pid");
    let gaps: Vec<Duration> = flaky.windows(2).map(|w| w[1].0 - w[0].0).collect();
    // runs 300 ms, then waits 100, 200, 400 ms: gaps ~400, ~500, ~700 ms
    assert!(gaps[0] >= Duration::from_millis(350), "flaky restarted too soon: {gaps:?}");
    assert!(gaps[1] > gaps[0], "the restart delay should grow: {gaps:?}");

    // the pool: every failure is followed by a replacement under the same name
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l.strip_prefix("pool: ")
            && let Some((name, _)) = rest.split_once(" (")
            && rest.contains(" failed: ")
        {
            assert!(rest.contains("job 4 failed (simulated)"), "{l}");
            let again = format!("pool: started {name} as ");
            assert!(
                lines[i + 1..].iter().any(|n| n.starts_with(&again)),
                "{name} was not respawned after: {l}\n{}",
                out.describe()
            );
        }
    }
    for w in ["w1", "w2", "w3"] {
        let starts = lines.iter().filter(|l| l.starts_with(&format!("pool: started {w} as {{"))).count();
        assert!(starts >= 2, "{w} started {starts} times\n{}", out.describe());
    }
    // graceful stop: the pool saw CANCEL
    assert!(lines.iter().any(|l| l.starts_with("pool: stopping, ")), "{}", out.describe());
}

/// Starts three nodes of cluster example `name` on loopback, the way its
/// README does (with test ports and fast Raft timeouts).
fn example_cluster(name: &str, tag: &str) -> Vec<Running> {
    let dir = temp_dir(tag);
    let ports = [free_port(), free_port(), free_port()];
    (0..3)
        .map(|i| {
            let extra = vec![
                "cluster.raft.heartbeat_timeout=500ms".to_owned(),
                "cluster.raft.reconcile_debounce=300ms".to_owned(),
                format!("node.data_dir={}", dir.join(format!("n{}", i + 1)).display()),
            ];
            let join = (i > 0).then_some(ports[0]);
            cluster_node(&example(name), &format!("n{}", i + 1), ports[i], join, SECRET, &extra)
        })
        .collect()
}

#[test]
fn the_cluster_examples_have_readmes_with_their_commands_and_pass_check() {
    for name in ["cluster", "leader-election", "chat", "kv"] {
        let readme = std::fs::read_to_string(example(name).join("README.md")).expect("README.md");
        let cmd = format!("cargo run --release -- run examples/{name} ");
        assert!(readme.contains(&cmd), "examples/{name}/README.md should show `{cmd}...`");
        run(&["check", p(&example(name))], T).expect_code(0);
    }
}

#[test]
fn leader_election_moves_the_work_to_another_node_when_the_leader_dies() {
    let mut nodes = example_cluster("leader-election", "ex-leader");
    let leader_line = |n: &Running| n.lines().into_iter().find(|l| l.starts_with("leader "));
    wait_for("a leader", LONG, || nodes.iter().any(|n| leader_line(n).is_some()));
    let first = nodes.iter().position(|n| leader_line(n).is_some()).unwrap();
    let token = |line: &str| -> u64 { line.rsplit("token ").next().unwrap().trim_end_matches(')').parse().unwrap() };
    let first_token = token(&leader_line(&nodes[first]).unwrap());
    nodes[first].wait_line(LONG, |l| l.starts_with("work 2 by "));
    let others: Vec<usize> = (0..3).filter(|i| *i != first).collect();
    assert!(others.iter().all(|i| leader_line(&nodes[*i]).is_none()), "only one leader at a time");
    // Killed before the others hold Raft seats, the leader would take the
    // only copy of the lock with it: wait until they vote.
    for i in &others {
        nodes[*i].wait_line(LONG, |l| l.ends_with(": raft voter, waiting for the lock"));
    }
    nodes[first].kill();
    wait_for("a new leader", LONG, || others.iter().any(|i| leader_line(&nodes[*i]).is_some()));
    let next = *others.iter().find(|i| leader_line(&nodes[**i]).is_some()).unwrap();
    let next_token = token(&leader_line(&nodes[next]).unwrap());
    assert!(next_token > first_token, "the fencing token grows: {first_token} then {next_token}");
    nodes[next].wait_line(LONG, |l| l.starts_with("work 1 by "));
    for mut n in nodes {
        n.kill();
    }
}

#[test]
fn chat_members_greet_each_other_across_three_nodes() {
    let mut nodes = example_cluster("chat", "ex-chat");
    for (i, n) in nodes.iter_mut().enumerate() {
        let me = format!("n{}", i + 1);
        for other in ["n1", "n2", "n3"].into_iter().filter(|o| *o != me) {
            let want = format!("{me}: {other} says hello #");
            n.wait_line(LONG, |l| l.starts_with(&want));
        }
    }
    nodes[2].kill();
    nodes[0].wait_line(LONG, |l| l.starts_with("n1: {n3@") && l.ends_with(" left"));
    for mut n in nodes {
        n.kill();
    }
}

#[test]
fn kv_counts_to_thirty_through_raft_and_shares_sessions_through_the_crdt_store() {
    let mut nodes = example_cluster("kv", "ex-kv");
    for (i, n) in nodes.iter_mut().enumerate() {
        let want = format!("n{}: counter=30 sessions=n1,n2,n3", i + 1);
        n.wait_line(LONG, |l| l == want);
    }
    for mut n in nodes {
        n.kill();
    }
}
