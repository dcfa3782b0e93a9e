//! The `system` module. `exit` and the node/cluster introspection answer
//! (from gossip when the cluster is enabled, for this node alone otherwise);
//! Raft and locks report that they are not available yet.

use std::rc::Rc;

use mlua::{IntoLuaMulti, Lua, Table};

use crate::{ClusterMember, Host};

const NO_RAFT: &str = "raft not available";

/// Builds the `system` table.
pub(crate) fn module(lua: &Lua, host: &Rc<dyn Host>, err_mt: &Table) -> mlua::Result<Table> {
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
    node.set("role", lua.create_function(|_, ()| Ok("non-member"))?)?;
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
    cluster.set("leader", lua.create_function(|_, ()| Ok(""))?)?;
    t.set("cluster", cluster)?;

    let raft = lua.create_table()?;
    for name in ["is_leader", "is_member", "role", "term", "commit_index", "stats"] {
        let emt = err_mt.clone();
        raft.set(
            name,
            lua.create_function(move |lua, ()| {
                (mlua::Value::Nil, crate::error_value(lua, &emt, "UNAVAILABLE", NO_RAFT)?).into_lua_multi(lua)
            })?,
        )?;
    }
    t.set("raft", raft)?;

    let lock = lua.create_table()?;
    for name in ["acquire", "release"] {
        let emt = err_mt.clone();
        lock.set(
            name,
            lua.create_function(move |lua, _args: mlua::MultiValue| {
                let e = crate::error_value(lua, &emt, "UNAVAILABLE", "system.lock needs cluster.enabled: true")?;
                (mlua::Value::Nil, e).into_lua_multi(lua)
            })?,
        )?;
    }
    t.set("lock", lock)?;
    Ok(t)
}
