//! Reading the Raft status lines of the `raft` fixture's status service
//! (`raft <role> <leader> <term> <voters> <standbys> <applied>`, one per
//! 100 ms) and the `kv` fixture's writer lines (`kv wrote <n>`).
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use crate::common::Running;

/// One status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub role: String,
    /// `-` when there is none.
    pub leader: String,
    pub term: u64,
    pub voters: u64,
    pub standbys: u64,
    pub applied: u64,
}

/// Timeouts fast enough that the tests do not wait on production defaults.
pub fn fast() -> Vec<String> {
    vec!["cluster.raft.heartbeat_timeout=500ms".to_owned(), "cluster.raft.reconcile_debounce=300ms".to_owned()]
}

/// The last status line printed at or after `since`.
pub fn status(lines: &[(Instant, String)], since: Instant) -> Option<Status> {
    lines.iter().rev().filter(|(t, _)| *t >= since).find_map(|(_, l)| parse(l))
}

fn parse(line: &str) -> Option<Status> {
    let f: Vec<&str> = line.strip_prefix("raft ")?.split(' ').collect();
    Some(Status {
        role: f.first()?.to_string(),
        leader: f.get(1)?.to_string(),
        term: f.get(2)?.parse().ok()?,
        voters: f.get(3)?.parse().ok()?,
        standbys: f.get(4)?.parse().ok()?,
        applied: f.get(5)?.parse().ok()?,
    })
}

/// Waits until the latest status lines of `nodes` show exactly
/// `(leaders, voters, standbys, non-members)`.
pub fn settle(nodes: &[Running], want: (usize, usize, usize, usize), timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let now = Instant::now();
        std::thread::sleep(Duration::from_millis(300));
        let roles = roles(nodes, now);
        let count = |r: &str| roles.iter().filter(|x| *x == r).count();
        if (count("leader"), count("voter"), count("standby"), count("non-member")) == want {
            return;
        }
        assert!(Instant::now() < deadline, "roles never settled to {want:?}: {roles:?}");
    }
}

/// Each node's role as of its last status line since `since` (`?` if none).
pub fn roles(nodes: &[Running], since: Instant) -> Vec<String> {
    nodes.iter().map(|n| status(&n.timed_lines(), since).map_or_else(|| "?".to_owned(), |s| s.role)).collect()
}

/// The last `kv wrote <n>` at or after `since`.
pub fn last_wrote(lines: &[(Instant, String)], since: Instant) -> Option<u64> {
    lines.iter().rev().filter(|(t, _)| *t >= since).find_map(|(_, l)| l.strip_prefix("kv wrote ")?.parse().ok())
}

/// The `kv resumed <n>` printed at or after `since`.
pub fn resumed(lines: &[(Instant, String)], since: Instant) -> Option<u64> {
    lines.iter().filter(|(t, _)| *t >= since).find_map(|(_, l)| l.strip_prefix("kv resumed ")?.parse().ok())
}
