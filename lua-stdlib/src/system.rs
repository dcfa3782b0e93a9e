//! The `system` module. `exit` and the node/cluster introspection answer
//! (from gossip when the cluster is enabled, for this node alone otherwise);
//! Raft and locks report that they are not available yet.

use std::rc::Rc;

use mlua::{IntoLuaMulti, Lua, Table};

use crate::{ClusterMember, Host, LockOp, RaftStatus};

const LOCK: &str = include_str!("lock.lua");

/// A wait option as milliseconds: a number (ms) or a duration string;
/// `None` when it is neither.
fn duration_ms(d: &mlua::Value) -> Option<f64> {
    match d {
        mlua::Value::Integer(i) => Some(*i as f64),
        mlua::Value::Number(n) => Some(*n),
        mlua::Value::String(s) => crate::parse_ms(&s.to_string_lossy()).ok(),
        _ => None,
    }
}

const NO_RAFT: &str = "raft not available";

/// Builds the `system` table.
pub(crate) fn module(lua: &Lua, host: &Rc<dyn Host>, kernel: &Table, err_mt: &Table) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let x = host.clone();
    t.set(
        "exit",
        lua.create_function(move |_, code: Option<i32>| {
            x.node_exit(code.unwrap_or(0));
            Ok(true)
        })?,
    )?;

    let node = lua.create_table()?;
    let x = host.clone();
    node.set("id", lua.create_function(move |_, ()| Ok(x.node_id()))?)?;
    let x = host.clone();
    node.set(
        "addr",
        lua.create_function(move |_, ()| {
            let members = x.cluster_members().unwrap_or_default();
            Ok(members.into_iter().find(|m| m.is_local).map(|m| m.addr).unwrap_or_default())
        })?,
    )?;
    let x = host.clone();
    node.set(
        "role",
        lua.create_function(move |_, ()| Ok(x.raft_status().map_or_else(|| "non-member".to_owned(), |s| s.role)))?,
    )?;
    t.set("node", node)?;

    let cluster = lua.create_table()?;
    let x = host.clone();
    cluster.set(
        "members",
        lua.create_function(move |lua, ()| {
            let members = x.cluster_members().unwrap_or_else(|| {
                vec![ClusterMember {
                    name: x.node_id(),
                    addr: String::new(),
                    state: "alive".into(),
                    failure_domain: String::new(),
                    internode: String::new(),
                    is_local: true,
                }]
            });
            let rows = members
                .into_iter()
                .map(|m| {
                    let row = lua.create_table()?;
                    row.set("id", m.name.as_str())?;
                    row.set("name", m.name)?;
                    row.set("addr", m.addr)?;
                    row.set("state", m.state)?;
                    row.set("role", "non-member")?;
                    row.set("failure_domain", m.failure_domain)?;
                    row.set("internode_addr", m.internode)?;
                    row.set("is_local", m.is_local)?;
                    Ok(row)
                })
                .collect::<mlua::Result<Vec<_>>>()?;
            lua.create_sequence_from(rows)
        })?,
    )?;
    let x = host.clone();
    cluster.set("size", lua.create_function(move |_, ()| Ok(x.cluster_members().map_or(1, |m| m.len())))?)?;
    let x = host.clone();
    cluster
        .set("leader", lua.create_function(move |_, ()| Ok(x.raft_status().map(|s| s.leader).unwrap_or_default()))?)?;
    t.set("cluster", cluster)?;

    let raft = lua.create_table()?;
    // Every function answers `nil, UNAVAILABLE` where Raft does not run.
    let status_fn = |name: &'static str, f: fn(&Lua, RaftStatus) -> mlua::Result<mlua::Value>| {
        let (x, emt) = (host.clone(), err_mt.clone());
        raft.set(
            name,
            lua.create_function(move |lua, ()| match x.raft_status() {
                Some(s) => f(lua, s)?.into_lua_multi(lua),
                None => (mlua::Value::Nil, crate::error_value(lua, &emt, "UNAVAILABLE", NO_RAFT)?).into_lua_multi(lua),
            })?,
        )
    };
    status_fn("is_leader", |_, s| Ok(mlua::Value::Boolean(s.role == "leader")))?;
    status_fn("is_member", |_, s| Ok(mlua::Value::Boolean(s.role != "non-member")))?;
    status_fn("role", |lua, s| lua.create_string(&s.role).map(mlua::Value::String))?;
    status_fn("term", |_, s| Ok(mlua::Value::Integer(s.term as i64)))?;
    status_fn("commit_index", |_, s| Ok(mlua::Value::Integer(s.commit_index as i64)))?;
    status_fn("stats", |lua, s| {
        let t = lua.create_table()?;
        for (k, v) in s.stats {
            t.set(k, v)?;
        }
        Ok(mlua::Value::Table(t))
    })?;
    t.set("raft", raft)?;

    let h = lua.create_table()?;
    let x = host.clone();
    h.set(
        "lock_call",
        lua.create_function(move |lua, (call, slot, op, name, wait_ms): (u64, u32, String, String, Option<f64>)| {
            let op = match op.as_str() {
                "acquire" => LockOp::Acquire { name, wait_ms: wait_ms.unwrap_or(0.0).max(0.0) as u64 },
                _ => LockOp::Release { name },
            };
            match x.lock_call(call, slot, op) {
                Ok(()) => true.into_lua_multi(lua),
                Err(e) => (mlua::Value::Nil, e.kind, e.message).into_lua_multi(lua),
            }
        })?,
    )?;
    h.set("duration_ms", lua.create_function(|_, d: mlua::Value| Ok(duration_ms(&d)))?)?;
    let lock: Table = lua.load(LOCK).set_name("=lock").call((kernel.clone(), h))?;
    t.set("lock", lock)?;
    Ok(t)
}
