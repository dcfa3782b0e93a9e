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

use crate::claims::{claim, give_back, give_back_on_exit, write};
use crate::raft::state_machine::wall_ms;
use crate::raft::types::{Command, Cond};
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
    let deadline = Instant::now() + wait;
    let outcome = loop {
        match write(shared, claim(shared, key(name), pid)).await {
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
    if !shared.locks.land(pid, name, token)
        && let Some(t) = token
    {
        // The process exited while the acquire was in flight.
        give_back(shared, &key(name), t).await;
        return Err(HostError::not_found(format!("process {pid} exited")));
    }
    outcome.map(|t| Value::Int(i64::try_from(t).unwrap_or(i64::MAX)))
}

/// `system.lock.release(name)` by `pid`: `true` if it held the lock.
///
/// A delete that failed (nothing applied, or an unknown outcome) leaves
/// the process holding the lock, so that a later `release` tries again:
/// the delete is conditional on this holding's version, so a retry never
/// removes a later holder's record. Dropping the claim instead left the
/// record in place with a holder whose every `release` said `false`.
pub(crate) async fn release(shared: &Arc<Shared>, pid: &str, name: &str) -> Result<Value, HostError> {
    let Some(token) = shared.locks.take(pid, name) else { return Ok(Value::Bool(false)) };
    let cmd = Command::Delete { key: key(name), cond: Cond::Version(token), now_ms: wall_ms() };
    let result = write(shared, cmd).await;
    if result.is_err() {
        shared.locks.begin(pid);
        if !shared.locks.land(pid, name, Some(token)) {
            give_back(shared, &key(name), token).await;
        }
    }
    result.map(|r| Value::Bool(r.applied))
}

/// This node lost contact with the Raft majority for longer than the lock
/// lease (`why` says how long): the majority may declare it gone and give
/// its locks to others, so every holder here is told now, with a CANCEL
/// event whose reason starts `lock <name> lost`, and no longer holds the
/// lock. The records are given back once a leader can be reached (or the
/// leader removes them with this node).
pub(crate) fn revoke_all(shared: &Arc<Shared>, why: &str) {
    let lost = shared.locks.drain();
    if lost.is_empty() {
        return;
    }
    let mesh = shared.mesh.lock().unwrap_or_else(|e| e.into_inner());
    let Some(spawner) = mesh.as_ref() else { return };
    for (pid, name, _) in &lost {
        let reason = format!("lock {name} lost: {why}");
        tracing::warn!(%pid, lock = %name, "{reason}");
        if let Ok(p) = crate::pid::Pid::parse(pid) {
            let to = p.counter;
            let event = crate::scheduler::envelope::Envelope::Event {
                to,
                kind: crate::scheduler::envelope::EventKind::Cancel,
                from: String::new(),
                result: Ok(Value::Nil),
                reason,
            };
            shared.route(event);
        }
    }
    let shared = shared.clone();
    spawner.spawn(async move {
        for (_, name, version) in lost {
            // Retried for a while: the majority is out of reach right now.
            for _ in 0..60 {
                let cmd = Command::Delete { key: key(&name), cond: Cond::Version(version), now_ms: wall_ms() };
                if write(&shared, cmd).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
}

/// Process `pid` exited: release what it held (on the mesh thread).
pub(crate) fn on_exit(shared: &Arc<Shared>, pid: &str) {
    give_back_on_exit(shared, &shared.locks, pid, key);
}
