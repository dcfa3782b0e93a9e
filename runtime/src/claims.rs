//! Claims that processes of this node hold in the replicated state (locks,
//! cluster-wide names), so they are given back when the process exits. A
//! claim still in flight when its process exits is given back as soon as
//! it lands. [`Claims`] is the bookkeeping; the functions below are the
//! Raft writes that locks and names share.

use std::sync::Arc;

use wippy_lua_stdlib::{HostError, Value};

use crate::raft::client::{self, ClientError};
use crate::raft::kv::Record;
use crate::raft::request::{Query, Reply, Request};
use crate::raft::state_machine::wall_ms;
use crate::raft::types::{Command, Cond, Response};
use crate::raft::upkeep::owner_id;
use crate::scheduler::envelope::{Envelope, EventKind};
use crate::shared::Shared;

mod table;
pub(crate) use table::Claims;

/// This node's current incarnation as a record owner.
pub(crate) fn me(shared: &Shared) -> String {
    let view = shared.cluster.read().unwrap_or_else(|e| e.into_inner());
    let generation = view.iter().flatten().find(|m| m.is_local).map_or(0, |m| m.generation);
    owner_id(&shared.node_id, generation)
}

/// Commits `cmd`; a failure is `UNAVAILABLE` with the client's reason.
pub(crate) async fn write(shared: &Arc<Shared>, cmd: Command) -> Result<Response, HostError> {
    match client::request(shared, Request::Write(cmd)).await {
        Ok(Reply::Written(r)) => Ok(r),
        Ok(_) => Err(wrong_reply()),
        Err(e @ ClientError::NoLeader(_)) | Err(e @ ClientError::Unknown(_)) => {
            Err(HostError::unavailable(e.to_string()))
        }
    }
}

/// Writes claim `cmd` (for `pid`, owned by `owner`), tracked in `claims`.
/// When the leader took it but its outcome is unknown, the caller is told
/// so, and a watcher reads the record for a while: if the write landed
/// after all while `pid` does not count it as held, the record is given
/// back and the loss logged (`<kind> <name> lost: ...`), so no record is
/// left that the node does not know it holds. (Adopting it instead would
/// need to tell this write from an older one of the same process.)
pub(crate) async fn write_claim(
    shared: &Arc<Shared>,
    cmd: Command,
    (kind, name): (&'static str, &str),
    pid: &str,
    owner: &str,
) -> Result<Response, HostError> {
    let key = cmd.key().map(str::to_owned).unwrap_or_default();
    match client::request(shared, Request::Write(cmd)).await {
        Ok(Reply::Written(r)) => Ok(r),
        Ok(_) => Err(wrong_reply()),
        Err(e @ ClientError::NoLeader(_)) => Err(HostError::unavailable(e.to_string())),
        Err(e @ ClientError::Unknown(_)) => {
            claims_of(shared, kind).set_unknown(pid, name, Some(owner));
            let watch = {
                let (shared, key, pid, owner, name) =
                    (shared.clone(), key, pid.to_owned(), owner.to_owned(), name.to_owned());
                async move {
                    let claims = claims_of(&shared, kind);
                    watch_unknown(&shared, claims, (kind, &name), &key, &pid, &owner).await;
                    claims.set_unknown(&pid, &name, None);
                }
            };
            if let Some(spawner) = shared.mesh.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                spawner.spawn(watch);
            }
            Err(HostError::unavailable(e.to_string()))
        }
    }
}

/// The bookkeeping of claims of `kind` ("lock" or "name").
fn claims_of<'a>(shared: &'a Shared, kind: &str) -> &'a Claims {
    if kind == "lock" { &shared.locks } else { &shared.names }
}

/// Whether `r` is the claim `pid` wrote as `owner`.
fn written_by(r: &Record, pid: &str, owner: &str) -> bool {
    r.value.0 == pid.as_bytes() && r.owner.as_deref() == Some(owner)
}

/// Reads a claim of unknown outcome for a while: if the write landed after
/// all while `pid` does not count it as held, gives the record back and
/// logs the loss. Stops early once `pid` holds the claim or a call of its
/// own settled it (see [`give_up`]).
async fn watch_unknown(
    shared: &Arc<Shared>,
    claims: &Claims,
    (kind, name): (&'static str, &str),
    key: &str,
    pid: &str,
    owner: &str,
) {
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if claims.holds(pid, name) || claims.unknown_owner(pid, name).is_none() {
            return;
        }
        // Checked again after the read: a call of the process may have
        // settled the claim meanwhile.
        if let Some(Some(r)) = read_record(shared, key).await
            && written_by(&r, pid, owner)
            && !claims.holds(pid, name)
            && claims.unknown_owner(pid, name).is_some()
        {
            tracing::warn!(%pid, %name, "{kind} {name} lost: its claim's outcome was unknown; given back");
            give_back(shared, key, r.version).await;
            return;
        }
    }
}

/// Settles a claim of unknown outcome that its process gives up (releases,
/// unregisters) before the watcher did: a linearizable read decides. If
/// the write landed, the record is given back and the call answers `true`,
/// as if the claim had been known to land; if it did not (yet), `false`.
async fn settle_unknown(
    shared: &Arc<Shared>,
    claims: &Claims,
    key: &str,
    (pid, name): (&str, &str),
    owner: &str,
) -> Result<Value, HostError> {
    let Some(record) = read_record(shared, key).await else {
        return Err(HostError::unavailable(format!(
            "{name}: the outcome of this process's earlier claim is still unknown; try again"
        )));
    };
    match record {
        Some(r) if written_by(&r, pid, owner) => {
            // Settled here; the watcher stops. (Not found, the write may
            // still land later, so the watcher keeps looking.)
            claims.set_unknown(pid, name, None);
            let cmd = Command::Delete { key: key.to_owned(), cond: Cond::Version(r.version), now_ms: wall_ms() };
            write(shared, cmd).await.map(|r| Value::Bool(r.applied))
        }
        _ => Ok(Value::Bool(false)),
    }
}

/// Whether `pid` still holds claim `name` (record `key`), which this node
/// counts as held: checked with a linearizable read, because while this
/// node was out of contact the majority may have declared it gone and
/// removed the record (a repeated register or acquire must not answer from
/// bookkeeping that the cluster has moved past). A claim found gone is
/// dropped from the bookkeeping and the holder told, as in [`revoke_all`].
/// `false` at once when this node does not count it as held.
pub(crate) async fn still_held(
    shared: &Arc<Shared>,
    claims: &Claims,
    (kind, key): (&'static str, &str),
    (pid, name): (&str, &str),
) -> Result<bool, HostError> {
    let Some(version) = claims.version(pid, name) else { return Ok(false) };
    let record = match client::request(shared, Request::Read(Query::Get { key: key.to_owned() })).await {
        Ok(Reply::Entry(r)) => r,
        Ok(_) => return Err(wrong_reply()),
        Err(e) => return Err(HostError::unavailable(e.to_string())),
    };
    if record.is_some_and(|r| r.version == version && r.value.0 == pid.as_bytes()) {
        return Ok(true);
    }
    // Dropped only if it is still the claim read against.
    if claims.version(pid, name) == Some(version) {
        claims.take(pid, name);
        let reason = format!("{kind} {name} lost: the cluster removed it while this node was out of contact");
        tracing::warn!(%pid, %name, "{reason}");
        cancel(shared, pid, reason);
    }
    Ok(false)
}

fn wrong_reply() -> HostError {
    HostError { kind: "INTERNAL", message: "raft answered a different request".into() }
}

/// Tells process `pid` of this node that it lost a claim: a CANCEL event
/// with `reason`.
fn cancel(shared: &Shared, pid: &str, reason: String) {
    if let Ok(p) = crate::pid::Pid::parse(pid) {
        shared.route(Envelope::Event {
            to: p.counter,
            kind: EventKind::Cancel,
            from: String::new(),
            result: Ok(Value::Nil),
            reason,
        });
    }
}

/// The record at `key` by a linearizable read: `None` when the read
/// failed, `Some(None)` when there is no record.
async fn read_record(shared: &Arc<Shared>, key: &str) -> Option<Option<Record>> {
    match client::request(shared, Request::Read(Query::Get { key: key.to_owned() })).await {
        Ok(Reply::Entry(r)) => Some(r),
        _ => None,
    }
}

/// The write that claims `key` for `pid`: only if free, owned by this
/// node's incarnation (so the leader removes it when the node goes), and
/// that owner (see [`confirm`]).
pub(crate) fn claim(shared: &Shared, key: String, pid: &str) -> (Command, String) {
    claim_if(shared, key, pid, Cond::Absent)
}

/// [`claim`] under another condition: `Cond::Version(v)` takes over the
/// record at version `v` (a record of the same process left by an earlier
/// incarnation of this node, which the leader would otherwise remove).
pub(crate) fn claim_if(shared: &Shared, key: String, pid: &str, cond: Cond) -> (Command, String) {
    let owner = me(shared);
    let cmd = Command::Put {
        key,
        value: pid.as_bytes().to_vec(),
        cond,
        ttl_ms: None,
        now_ms: wall_ms(),
        owner: Some(owner.clone()),
    };
    (cmd, owner)
}

/// Records the outcome of claim `name` of `pid` (written as owned by
/// `owner`; `version` when it applied), after its write returned. A claim
/// whose process exited meanwhile, or whose incarnation changed (see
/// [`confirm`]), is given back and the caller told why.
pub(crate) async fn settle(
    shared: &Arc<Shared>,
    claims: &Claims,
    key: fn(&str) -> String,
    (pid, name): (&str, &str),
    owner: &str,
    version: Option<u64>,
) -> Result<(), HostError> {
    if !claims.land(pid, name, version)
        && let Some(v) = version
    {
        give_back(shared, &key(name), v).await;
        return Err(HostError::not_found(format!("process {pid} exited")));
    }
    match version {
        Some(v) => confirm(shared, claims, key, (pid, name), owner, v).await,
        None => Ok(()),
    }
}

/// Called once claim `name` of `pid`, written as owned by `owner`, has
/// landed at `version`. If this node's incarnation changed meanwhile (it
/// was declared down and rejoined), the leader removes the record with the
/// old incarnation, and the revocation of the node's claims may have run
/// before this one landed: the claim is given back now and the caller told,
/// rather than leaving a holder whose record is about to vanish.
pub(crate) async fn confirm(
    shared: &Arc<Shared>,
    claims: &Claims,
    key: fn(&str) -> String,
    (pid, name): (&str, &str),
    owner: &str,
    version: u64,
) -> Result<(), HostError> {
    if me(shared) == owner {
        return Ok(());
    }
    if claims.take(pid, name).is_some() {
        give_back(shared, &key(name), version).await;
    }
    Err(HostError::unavailable(format!(
        "{name}: this node rejoined the cluster while the claim was being written; try again"
    )))
}

/// Removes the record `key` if it is still the write at `version`.
pub(crate) async fn give_back(shared: &Arc<Shared>, key: &str, version: u64) {
    let cmd = Command::Delete { key: key.to_owned(), cond: Cond::Version(version), now_ms: wall_ms() };
    if let Err(e) = write(shared, cmd).await {
        // The leader removes it with this node at the latest; until then
        // it stays claimed by a dead process.
        tracing::warn!(%key, error = %e, "could not give back the claim of an exited process");
    }
}

/// Process `pid` exited: gives back what it held in `claims` (record keys
/// from `key`), on the mesh thread.
pub(crate) fn give_back_on_exit(shared: &Arc<Shared>, claims: &Claims, pid: &str, key: fn(&str) -> String) {
    let held = claims.exit(pid);
    if held.is_empty() {
        return;
    }
    let mesh = shared.mesh.lock().unwrap_or_else(|e| e.into_inner());
    let Some(spawner) = mesh.as_ref() else { return };
    let shared = shared.clone();
    spawner.spawn(async move {
        for (name, version) in held {
            give_back(&shared, &key(&name), version).await;
        }
    });
}

/// Every claim in `claims` is lost (`reason(name)` says why): each holder
/// gets a CANCEL event with that reason and no longer holds it, and the
/// records are given back once a leader can be reached (or the leader
/// removes them with this node's incarnation).
pub(crate) fn revoke_all(
    shared: &Arc<Shared>,
    claims: &Claims,
    key: fn(&str) -> String,
    reason: impl Fn(&str) -> String,
) {
    let lost = claims.drain();
    if lost.is_empty() {
        return;
    }
    let mesh = shared.mesh.lock().unwrap_or_else(|e| e.into_inner());
    let Some(spawner) = mesh.as_ref() else { return };
    for (pid, name, _) in &lost {
        let reason = reason(name);
        tracing::warn!(%pid, %name, "{reason}");
        cancel(shared, pid, reason);
    }
    let shared = shared.clone();
    spawner.spawn(async move {
        for (_, name, version) in lost {
            // Retried for a while: the majority may be out of reach now.
            for _ in 0..60 {
                let cmd = Command::Delete { key: key(&name), cond: Cond::Version(version), now_ms: wall_ms() };
                if write(&shared, cmd).await.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    });
}

/// This node's claims can no longer be trusted (`why`): its lock holders
/// and name holders are told and no longer hold them.
pub(crate) fn revoke_node_claims(shared: &Arc<Shared>, why: &str) {
    crate::lock::revoke_all(shared, why);
    crate::naming::consistent::revoke_all(shared, why);
}

/// Gives up the claim `name` of `pid` through Raft, only if it is still the
/// write this node recorded (its version): `true` when it was removed,
/// `false` when `pid` holds no such claim. A failed write leaves the claim
/// with its holder, so a later call can try again (the versioned delete
/// never removes a later holder's record).
pub(crate) async fn give_up(
    shared: &Arc<Shared>,
    claims: &Claims,
    key: fn(&str) -> String,
    pid: &str,
    name: &str,
) -> Result<Value, HostError> {
    let Some(version) = claims.take(pid, name) else {
        if let Some(owner) = claims.unknown_owner(pid, name) {
            return settle_unknown(shared, claims, &key(name), (pid, name), &owner).await;
        }
        return Ok(Value::Bool(false));
    };
    let cmd = Command::Delete { key: key(name), cond: Cond::Version(version), now_ms: wall_ms() };
    let result = write(shared, cmd).await;
    if result.is_err() {
        claims.begin(pid);
        if !claims.land(pid, name, Some(version)) {
            give_back(shared, &key(name), version).await;
        }
    }
    result.map(|r| Value::Bool(r.applied))
}
