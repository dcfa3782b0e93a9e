//! CONSISTENT names: `process.registry` scope 2, kept in the Raft state.
//!
//! A name is the record `name/<name>` holding the PID, written only if
//! absent (first write wins, cluster-wide) and owned by the registering
//! node's incarnation, so the Raft leader removes it when that node dies,
//! leaves or restarts. The registering node gives it back when the process
//! exits. Lookups read this node's replica: they are as fresh as the
//! replica, not linearizable (a name registered a moment ago elsewhere may
//! not resolve here yet).

use std::sync::Arc;

use wippy_lua_stdlib::{HostError, Value};

use crate::claims::{claim_if, give_back_on_exit, give_up, revoke_all as revoke, settle, still_held, write_claim};
use crate::raft::state_machine::wall_ms;
use crate::raft::types::Cond;
use crate::shared::Shared;

fn key(name: &str) -> String {
    format!("name/{name}")
}

/// Registers `name` for `pid`, a process of this node. The caller has
/// already counted the claim in (`shared.names.begin(pid)`), before the
/// process could exit.
pub(crate) async fn register(shared: &Arc<Shared>, name: &str, pid: &str) -> Result<Value, HostError> {
    // A STRONG registration of the name in progress is not overtaken (as
    // far as this node's replica shows it).
    if let Some((holder, _)) = record(shared, &format!("strong/{name}"))
        && holder != pid
    {
        shared.names.land(pid, name, None);
        return Err(HostError::already_exists(format!(
            "strong name reservation pending for a different process: {name}"
        )));
    }
    // Already held: registering again succeeds without a write, once a
    // linearizable read shows the record is still this one.
    match still_held(shared, &shared.names, ("name", &key(name)), (pid, name)).await {
        Ok(false) => {}
        held => {
            shared.names.land(pid, name, None);
            return held.map(Value::Bool);
        }
    }
    let mut cond = Cond::Absent;
    let mut took_over = false;
    loop {
        let (cmd, owner) = claim_if(shared, key(name), pid, cond);
        let outcome = write_claim(shared, cmd, ("name", name), pid, &owner).await;
        let version = match &outcome {
            Ok(r) if r.applied => Some(r.version),
            _ => None,
        };
        // Another try keeps the claim counted in (a second `begin` before
        // this one lands), so an exit meanwhile is never missed.
        let retry = match &outcome {
            Ok(r) if r.applied => None,
            // The process's own record, but this node no longer counts it
            // as held (it was revoked when the node rejoined): owned by the
            // old incarnation, it is about to be removed. Take it over once.
            Ok(r) if r.previous.as_deref() == Some(pid.as_bytes()) && !took_over && !shared.names.holds(pid, name) => {
                took_over = true;
                Some(Cond::Version(r.version))
            }
            // The old record went (the leader removed it with the old
            // incarnation) between the two writes: the name is free, so
            // claim it as any other free name, once.
            Ok(r) if r.previous.is_none() && cond != Cond::Absent => Some(Cond::Absent),
            _ => None,
        };
        if retry.is_some() {
            shared.names.begin(pid);
        }
        settle(shared, &shared.names, key, (pid, name), &owner, version).await?;
        if let Some(next) = retry {
            cond = next;
            continue;
        }
        return match outcome {
            Ok(r) if r.applied => Ok(Value::Bool(true)),
            // Registering a name again for the same process succeeds.
            Ok(r) if r.previous.as_deref() == Some(pid.as_bytes()) && shared.names.holds(pid, name) => {
                Ok(Value::Bool(true))
            }
            Ok(r) => {
                let holder = r.previous.map(|p| String::from_utf8_lossy(&p).into_owned());
                Err(HostError::already_exists(match holder {
                    Some(holder) => format!("name {name} is already registered to {holder}"),
                    None => format!("name {name} is already registered"),
                }))
            }
            Err(e) => Err(e),
        };
    }
}

/// Removes `name` if it is registered to `caller`: decided by the claim
/// this node recorded when the registration landed, and removed through a
/// versioned Raft delete, never from the replica (which may not have
/// applied the registration yet). `false` when `caller` holds no such name.
pub(crate) async fn unregister(shared: &Arc<Shared>, caller: &str, name: &str) -> Result<Value, HostError> {
    give_up(shared, &shared.names, key, caller, name).await
}

/// This node's processes lost their names (`why`: the node rejoined the
/// cluster under a new incarnation, so the leader removes what the old one
/// owned): each holder gets a CANCEL event whose reason is
/// `name <name> lost: <why>`. A node merely out of contact keeps its
/// names; the leader removes them only once gossip declares it gone.
pub(crate) fn revoke_all(shared: &Arc<Shared>, why: &str) {
    revoke(shared, &shared.names, key, |name| format!("name {name} lost: {why}"));
}

/// The PID and version of `name` in this node's replica (its in-memory
/// index of the name records: one hash lookup, no read transaction).
fn entry(shared: &Shared, name: &str) -> Option<(String, u64)> {
    let local = shared.raft_local.read().unwrap_or_else(|e| e.into_inner());
    match local.as_ref() {
        Some(l) => l.sm.names.get(name),
        // A client node: the copy it follows from the members.
        None => shared.followed_names.get(name),
    }
}

/// The PID held by record `key` in this node's replica, and its version.
fn record(shared: &Shared, key: &str) -> Option<(String, u64)> {
    let local = shared.raft_local.read().unwrap_or_else(|e| e.into_inner()).clone()?;
    let record = local.sm.entry(key, wall_ms()).ok().flatten()?;
    Some((String::from_utf8(record.value.0).ok()?, record.version))
}

/// The PID `name` resolves to in this node's replica.
pub(crate) fn lookup(shared: &Shared, name: &str) -> Option<String> {
    entry(shared, name).map(|(pid, _)| pid)
}

/// Process `pid` exited: give its names back (on the mesh thread).
pub(crate) fn on_exit(shared: &Arc<Shared>, pid: &str) {
    give_back_on_exit(shared, &shared.names, pid, key);
}
