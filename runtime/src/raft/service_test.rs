//! The Raft service on three in-process nodes over real meshes, with
//! durable storage in temporary directories: bootstrap with
//! `bootstrap_expect = 3`, one leader everyone agrees on, a new leader
//! after the old one is cut off, and committed membership kept across a
//! restart of the storage.

use std::time::Duration;

use super::client::ClientError;
use super::service::{RaftOptions, RaftService};
use super::store_test::TempDir;
use super::test_cluster::{TestNode, set_views, wait_for};
use super::types::{Command, Cond};

pub(super) fn options(dir: &TempDir, expect: usize) -> RaftOptions {
    RaftOptions {
        data_dir: Some(dir.path().to_path_buf()),
        bootstrap_expect: expect,
        has_seeds: expect != 1,
        max_voters: 5,
        max_standbys: 4,
        heartbeat_timeout: Duration::from_millis(300),
        reconcile_debounce: Duration::from_millis(200),
        reconcile_timeout: Duration::from_secs(2),
        snapshot_threshold: 1000,
        trailing_logs: 100,
        lock_lease: Duration::from_secs(1),
    }
}

fn status(node: &TestNode) -> Option<(String, String, u64)> {
    let s = node.shared.raft_status.read().unwrap().clone()?;
    Some((s.role, s.leader, s.term))
}

fn voters(node: &TestNode) -> Option<String> {
    let s = node.shared.raft_status.read().unwrap().clone()?;
    s.stats.into_iter().find(|(k, _)| k == "voters").map(|(_, v)| v)
}

/// Three nodes `<prefix>1..3` that see each other, each with a Raft
/// service expecting three to bootstrap; the directories live as long as
/// the first element.
fn three(prefix: &str) -> ([TempDir; 3], Vec<TestNode>, Vec<Option<RaftService>>) {
    let dirs = [TempDir::new(), TempDir::new(), TempDir::new()];
    let nodes: Vec<TestNode> = (1..=3).map(|i| TestNode::start(&format!("{prefix}{i}"))).collect();
    set_views(&nodes.iter().collect::<Vec<_>>());
    let services = nodes
        .iter()
        .zip(&dirs)
        .map(|(n, d)| Some(RaftService::start(&options(d, 3), n.shared.clone()).unwrap()))
        .collect();
    (dirs, nodes, services)
}

#[test]
fn three_nodes_bootstrap_elect_and_fail_over() {
    let (_dirs, mut nodes, mut services) = three("r");

    // One leader, known to all, three voters everywhere.
    wait_for("a leader everyone agrees on", Duration::from_secs(20), || {
        let leaders: Vec<String> = nodes.iter().filter_map(status).map(|(_, l, _)| l).collect();
        leaders.len() == 3 && !leaders[0].is_empty() && leaders.iter().all(|l| *l == leaders[0])
    });
    wait_for("three voters everywhere", Duration::from_secs(10), || {
        nodes.iter().all(|n| voters(n).as_deref() == Some("3"))
    });
    let leader = status(&nodes[0]).unwrap().1;
    let roles: Vec<String> = nodes.iter().filter_map(status).map(|(r, _, _)| r).collect();
    assert_eq!(roles.iter().filter(|r| *r == "leader").count(), 1, "{roles:?}");
    assert_eq!(roles.iter().filter(|r| *r == "voter").count(), 2, "{roles:?}");
    assert!(nodes.iter().all(|n| n.shared.raft_member.load(std::sync::atomic::Ordering::SeqCst)));

    // Cut the leader off: the two others elect a new one in a later term.
    let i = nodes.iter().position(|n| n.shared.node_id == leader).unwrap();
    let old_term = status(&nodes[i]).unwrap().2;
    services[i].take().unwrap().stop();
    nodes[i].stop_mesh();
    let rest: Vec<&TestNode> = nodes.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, n)| n).collect();
    set_views(&rest);
    wait_for("a new leader among the two", Duration::from_secs(20), || {
        let s: Vec<(String, String, u64)> = rest.iter().filter_map(|n| status(n)).collect();
        s.len() == 2 && !s[0].1.is_empty() && s[0].1 != leader && s.iter().all(|x| x.1 == s[0].1 && x.2 > old_term)
    });

    for s in services.iter_mut().filter_map(Option::take) {
        s.stop();
    }
    for n in &mut nodes {
        n.stop_mesh();
    }
}

#[test]
fn a_single_node_bootstraps_alone_and_keeps_its_state_across_restarts() {
    let dir = TempDir::new();
    let mut node = TestNode::start("solo");
    set_views(&[&node]);
    let service = RaftService::start(&options(&dir, 1), node.shared.clone()).unwrap();
    wait_for("leadership", Duration::from_secs(10), || status(&node).is_some_and(|(r, _, _)| r == "leader"));
    let term = status(&node).unwrap().2;
    service.stop();
    assert!(status(&node).is_none(), "no status once stopped");

    // Same directory: the node is still the configured voter and leads
    // again without bootstrapping (bootstrap_expect 0 would refuse to);
    // openraft restores its own committed vote, so the term may stay.
    let service = RaftService::start(&options(&dir, 0), node.shared.clone()).unwrap();
    wait_for("leadership after restart", Duration::from_secs(10), || {
        status(&node).is_some_and(|(r, _, t)| r == "leader" && t >= term)
    });
    service.stop();
    node.stop_mesh();
}

fn put(key: &str, value: &[u8]) -> Command {
    Command::Put { key: key.into(), value: value.to_vec(), cond: Cond::Always, ttl_ms: None, now_ms: 0, owner: None }
}

/// Writes from a follower reach every replica; after the leader is cut
/// off the survivors keep committing; a node left alone cannot.
#[test]
fn writes_commit_everywhere_survive_a_leader_loss_and_stall_without_quorum() {
    let (_dirs, mut nodes, mut services) = three("w");
    wait_for("three voters under one leader", Duration::from_secs(20), || {
        nodes.iter().all(|n| voters(n).as_deref() == Some("3") && status(n).is_some_and(|(_, l, _)| !l.is_empty()))
    });
    let leader = status(&nodes[0]).unwrap().1;
    let li = nodes.iter().position(|n| n.shared.node_id == leader).unwrap();
    let follower = (li + 1) % 3;

    // A follower's write is forwarded to the leader and lands everywhere.
    let before = services[follower].as_ref().unwrap().write(put("k", b"v1")).unwrap();
    assert_eq!(before.previous, None);
    let again = services[li].as_ref().unwrap().write(put("k", b"v2")).unwrap();
    assert_eq!(again.previous.as_deref(), Some(&b"v1"[..]));
    wait_for("every replica applied both", Duration::from_secs(10), || {
        services.iter().flatten().all(|s| s.read("k").as_deref() == Some(&b"v2"[..]))
    });

    // The leader goes; the two others elect one and keep committing.
    services[li].take().unwrap().stop();
    nodes[li].stop_mesh();
    let rest: Vec<usize> = (0..3).filter(|&i| i != li).collect();
    set_views(&rest.iter().map(|&i| &nodes[i]).collect::<Vec<_>>());
    let r = services[rest[0]].as_ref().unwrap().write(put("k", b"v3")).unwrap();
    assert_eq!(r.previous.as_deref(), Some(&b"v2"[..]));
    assert_eq!(
        services[rest[1]]
            .as_ref()
            .unwrap()
            .write(Command::Delete { key: "k".into(), cond: Cond::Always, now_ms: 0 })
            .unwrap()
            .previous
            .as_deref(),
        Some(&b"v3"[..])
    );

    // One of three voters alone has no quorum: the write does not commit.
    // Whether it was still leader (it took the write: outcome unknown) or
    // had stepped down (no leader to take it) depends on timing.
    services[rest[1]].take().unwrap().stop();
    nodes[rest[1]].stop_mesh();
    let lone = services[rest[0]].as_ref().unwrap();
    let lost = lone.write(put("k", b"lost"));
    assert!(matches!(lost, Err(ClientError::NoLeader(_) | ClientError::Unknown(_))), "{lost:?}");
    assert_eq!(lone.read("k"), None, "nothing was applied");

    for s in services.iter_mut().filter_map(Option::take) {
        s.stop();
    }
    for n in &mut nodes {
        n.stop_mesh();
    }
}
