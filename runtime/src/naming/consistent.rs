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

use crate::claims::{claim, give_back, give_back_on_exit, write};
use crate::raft::state_machine::wall_ms;
use crate::raft::types::{Command, Cond};
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
    let outcome = write(shared, claim(shared, key(name), pid)).await;
    let version = match &outcome {
        Ok(r) if r.applied => Some(r.version),
        _ => None,
    };
    if !shared.names.land(pid, name, version)
        && let Some(v) = version
    {
        give_back(shared, &key(name), v).await;
        return Err(HostError::not_found(format!("process {pid} exited")));
    }
    match outcome {
        Ok(r) if r.applied => Ok(Value::Bool(true)),
        // Registering a name again for the same process succeeds.
        Ok(r) if r.previous.as_deref() == Some(pid.as_bytes()) => Ok(Value::Bool(true)),
        Ok(r) => {
            let holder = r.previous.map(|p| String::from_utf8_lossy(&p).into_owned()).unwrap_or_default();
            Err(HostError::already_exists(format!("name {name} is already registered to {holder}")))
        }
        Err(e) => Err(e),
    }
}

/// Removes `name` if it is registered to `caller`; `false` when it is
/// free or belongs to another process.
pub(crate) async fn unregister(shared: &Arc<Shared>, caller: &str, name: &str) -> Result<Value, HostError> {
    let Some((pid, version)) = entry(shared, name) else { return Ok(Value::Bool(false)) };
    if pid != caller {
        return Ok(Value::Bool(false));
    }
    let _ = shared.names.take(&pid, name);
    let cmd = Command::Delete { key: key(name), cond: Cond::Version(version), now_ms: wall_ms() };
    write(shared, cmd).await.map(|r| Value::Bool(r.applied))
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
