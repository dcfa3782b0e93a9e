//! The process-facing calls on groups and EVENTUAL names: argument rules,
//! cross-scope name checks, and the answers Lua sees.

use std::collections::BTreeMap;

use wippy_lua_stdlib::{HostError, PgOp, Value};

use super::names::NameError;
use super::table::PgError;
use crate::pid::Pid;
use crate::shared::Shared;

fn strings(v: impl IntoIterator<Item = String>) -> Value {
    Value::Array(v.into_iter().map(Value::str).collect())
}

fn pg_error(e: PgError) -> HostError {
    match e {
        PgError::NoScope(_) => HostError { kind: "NOT_FOUND", message: e.to_string() },
        PgError::NotMember(_) | PgError::TooManyGroups { .. } | PgError::TooManyMembers { .. } => {
            HostError::invalid(e.to_string())
        }
    }
}

/// One `pg` call by process `pid` on `scope`.
pub(crate) fn pg_call(shared: &Shared, pid: &str, scope: &str, op: PgOp) -> Result<Value, HostError> {
    match op {
        PgOp::Open => {
            if shared.replica.table().has_scope(scope) {
                Ok(Value::Bool(true))
            } else {
                Err(pg_error(PgError::NoScope(scope.to_owned())))
            }
        }
        PgOp::Join(groups) => shared.with_table(None, |t| match t.join(scope, &groups, pid) {
            Ok(fx) => (Ok(Value::Bool(true)), fx),
            Err(e) => (Err(pg_error(e)), Default::default()),
        }),
        PgOp::Leave(groups) => shared.with_table(None, |t| match t.leave(scope, &groups, pid) {
            Ok(fx) => (Ok(Value::Bool(true)), fx),
            Err(e) => (Err(pg_error(e)), Default::default()),
        }),
        PgOp::Members { group, local } => {
            let t = shared.replica.table();
            Ok(strings(if local { t.local_members(scope, &group) } else { t.members(scope, &group) }))
        }
        PgOp::Groups { local } => {
            let t = shared.replica.table();
            Ok(strings(if local { t.local_groups(scope) } else { t.which_groups(scope) }))
        }
        PgOp::Watch(group) => {
            let id = shared.replica.next_sub();
            let snapshot = shared.with_table(None, |t| (t.watch(id, pid, scope, group.as_deref()), Default::default()));
            let snapshot: BTreeMap<String, Vec<String>> = snapshot.map_err(pg_error)?;
            let members = match group {
                Some(g) => strings(snapshot.get(&g).cloned().unwrap_or_default()),
                None => Value::Map(snapshot.into_iter().map(|(g, m)| (Value::str(g), strings(m))).collect()),
            };
            Ok(Value::Map(vec![
                (Value::str("id"), Value::Int(i64::try_from(id).unwrap_or(i64::MAX))),
                (Value::str("members"), members),
            ]))
        }
        PgOp::Unwatch(id) => Ok(Value::Bool(shared.replica.table().unwatch(id, pid))),
        PgOp::Release => shared.with_table(None, |t| {
            let fx = t.release(scope, pid);
            (Ok(Value::Bool(true)), fx)
        }),
    }
}

/// `register(name, pid, EVENTUAL)`: `pid` is a process of this node.
pub(crate) fn register_eventual(shared: &Shared, name: &str, pid: &str, at_ns: u64) -> Result<Value, HostError> {
    own_pid(shared, pid, "an EVENTUAL")?;
    if let Some(owner) = crate::naming::consistent::lookup(shared, name)
        && owner != pid
    {
        return Err(HostError::already_exists(format!("name {name} is registered cluster-wide to {owner}")));
    }
    if let Some(owner) = shared.registry.lookup(name)
        && owner != pid
    {
        return Err(HostError::already_exists(format!("name {name} is registered locally to {owner}")));
    }
    shared.with_table(None, |t| match t.bind(name, pid, at_ns) {
        Ok(fx) => (Ok(Value::Bool(true)), fx),
        Err(e @ NameError::Taken { .. }) => (Err(HostError::already_exists(e.to_string())), Default::default()),
    })
}

/// `unregister(name, EVENTUAL)`: drops this node's binding of `name`.
pub(crate) fn unregister_eventual(shared: &Shared, name: &str) -> Value {
    shared.with_table(None, |t| match t.unbind(name) {
        Some(fx) => (Value::Bool(true), fx),
        None => (Value::Bool(false), Default::default()),
    })
}

/// Checks that `pid` is a process of this node: only the owning node
/// publishes a process's names.
pub(crate) fn own_pid(shared: &Shared, pid: &str, what: &str) -> Result<(), HostError> {
    let parsed = Pid::parse(pid).map_err(|e| HostError::invalid(format!("invalid pid: {e}")))?;
    if !parsed.node.is_empty() && parsed.node != shared.node_id {
        return Err(HostError::invalid(format!(
            "{what} name is registered from the node of its process ({}); {pid} is not on this node",
            parsed.node
        )));
    }
    Ok(())
}
