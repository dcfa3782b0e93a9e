//! `system.lock`: cluster-wide locks kept in the Raft state.
//!
//! A lock is the record `lock/<name>`, written only if absent (so two
//! acquires can never both succeed) and owned by the holder's node
//! incarnation, so the leader removes it when that node dies, leaves, or
//! restarts. Its version, the log index of the acquiring write, is the
//! fencing token: every later acquire of any lock gets a larger one.
//!
//! This node remembers which of its processes hold which locks
//! ([`Claims`](crate::claims::Claims)), to release them when the holder
//! calls `release` and when it exits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wippy_lua_stdlib::{HostError, Value};

use crate::claims::{claim, give_back_on_exit, give_up, revoke_all as revoke, settle, still_held, write_claim};
use crate::shared::Shared;

/// Pause between tries of an acquire that waits for a held lock.
const RETRY: Duration = Duration::from_millis(25);

fn key(name: &str) -> String {
    format!("lock/{name}")
}

/// The lock lease of a client node (outside the Raft configuration, so no
/// leader's appends reach it): while its processes hold locks, it confirms
/// contact with a Raft majority every quarter lease with a linearizable
/// read, which the leader answers only after a quorum acknowledged it. A
/// holder whose node has had no confirmed contact for `lease` (counted
/// from when the last successful read was sent) gets CANCEL, as on members.
pub(crate) async fn client_lease(shared: Arc<Shared>, lease: Duration) {
    use crate::raft::request::{Query, Request};
    let every = lease / 4;
    let mut confirmed: Option<Instant> = None;
    loop {
        tokio::time::sleep(every).await;
        if shared.locks.is_empty() {
            confirmed = None;
            continue;
        }
        // Locks taken since the last round: their acquire was a write that
        // a quorum acknowledged, within the last round.
        let since = *confirmed.get_or_insert_with(|| Instant::now() - every);
        let sent = Instant::now();
        let read = crate::raft::client::request(&shared, Request::Read(Query::Get { key: "_sys/cluster".into() }));
        if let Ok(Ok(_)) = tokio::time::timeout(lease / 2, read).await {
            confirmed = Some(sent);
        } else if since.elapsed() > lease {
            revoke_all(&shared, &format!("no contact with a Raft majority for over {lease:?}"));
            confirmed = None;
        }
    }
}

/// `system.lock.acquire(name [, {wait}])` by `pid`: the fencing token, or
/// `ALREADY_EXISTS` naming the holder when the lock stays held past `wait`.
/// The caller has already counted the claim in (`shared.locks.begin(pid)`),
/// before the process could exit.
pub(crate) async fn acquire(shared: &Arc<Shared>, pid: &str, name: &str, wait: Duration) -> Result<Value, HostError> {
    // Already held: no write, so an unknown outcome can never be mistaken
    // for a fresh acquire (see `claims::write_claim`); a linearizable read
    // confirms the record is still this one.
    match still_held(shared, &shared.locks, ("lock", &key(name)), (pid, name)).await {
        Ok(false) => {}
        held => {
            shared.locks.land(pid, name, None);
            held?;
            return Err(HostError::already_exists(format!("lock held: {name} (by this process)")));
        }
    }
    let deadline = Instant::now() + wait;
    let mut owner: String;
    let outcome = loop {
        let (cmd, mine) = claim(shared, key(name), pid);
        owner = mine;
        match write_claim(shared, cmd, ("lock", name), pid, &owner).await {
            Ok(r) if r.applied => break Ok(r.version),
            Ok(r) if r.previous.as_deref() == Some(pid.as_bytes()) => {
                break Err(HostError::already_exists(format!("lock held: {name} (by this process)")));
            }
            Ok(r) if Instant::now() >= deadline => {
                let holder = r.previous.map(|p| String::from_utf8_lossy(&p).into_owned()).unwrap_or_default();
                break Err(HostError::already_exists(format!("lock held: {name} (by {holder})")));
            }
            Ok(_) => tokio::time::sleep(RETRY.min(deadline.saturating_duration_since(Instant::now()))).await,
            Err(e) => break Err(e),
        }
    };
    let token = outcome.as_ref().ok().copied();
    settle(shared, &shared.locks, key, (pid, name), &owner, token).await?;
    outcome.map(|t| Value::Int(i64::try_from(t).unwrap_or(i64::MAX)))
}

/// `system.lock.release(name)` by `pid`: `true` if it held the lock. A
/// release whose delete failed leaves the lock with its holder, so a later
/// `release` tries again (see [`give_up`]).
pub(crate) async fn release(shared: &Arc<Shared>, pid: &str, name: &str) -> Result<Value, HostError> {
    give_up(shared, &shared.locks, key, pid, name).await
}

/// This node lost contact with the Raft majority for longer than the lock
/// lease, or rejoined the cluster under a new incarnation (`why` says
/// which): the majority may give its locks to others, so every holder here
/// is told now, with a CANCEL event whose reason starts `lock <name> lost`.
pub(crate) fn revoke_all(shared: &Arc<Shared>, why: &str) {
    revoke(shared, &shared.locks, key, |name| format!("lock {name} lost: {why}"));
}

/// Process `pid` exited: release what it held (on the mesh thread).
pub(crate) fn on_exit(shared: &Arc<Shared>, pid: &str) {
    give_back_on_exit(shared, &shared.locks, pid, key);
}
