//! The `system` module. On a single node only `exit` and the node/cluster
//! introspection answer; Raft and locks report that they are not available
//! until the cluster is enabled.

use std::rc::Rc;

use mlua::{IntoLuaMulti, Lua, Table};

use crate::Host;

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
    node.set("addr", lua.create_function(|_, ()| Ok(""))?)?;
    node.set("role", lua.create_function(|_, ()| Ok("non-member"))?)?;
    t.set("node", node)?;

    let cluster = lua.create_table()?;
    let x = host.clone();
    cluster.set(
        "members",
        lua.create_function(move |lua, ()| {
            let me = lua.create_table()?;
            me.set("id", x.node_id())?;
            me.set("name", x.node_id())?;
            me.set("addr", "")?;
            me.set("state", "alive")?;
            me.set("role", "non-member")?;
            me.set("failure_domain", "")?;
            me.set("is_local", true)?;
            lua.create_sequence_from([me])
        })?,
    )?;
    cluster.set("size", lua.create_function(|_, ()| Ok(1))?)?;
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
