//! The `pg` module's binding: one host call (`pg_call`) that `pg.lua`
//! builds the scope handles on.

use std::rc::Rc;

use mlua::{IntoLuaMulti, Lua, Table};

use crate::{Host, HostError, PgOp};

const PG: &str = include_str!("pg.lua");

/// Builds the `pg` module table.
pub(crate) fn module(lua: &Lua, host: &Rc<dyn Host>, kernel: &Table, err_mt: &Table) -> mlua::Result<Table> {
    let h = lua.create_table()?;
    let x = host.clone();
    let emt = err_mt.clone();
    h.set(
        "pg_call",
        lua.create_function(move |lua, (slot, scope, op, arg): (u32, String, String, mlua::Value)| {
            let result = parse(&op, arg).and_then(|op| x.pg_call(slot, &scope, op));
            match result {
                Ok(v) => v.to_lua(lua, &emt)?.into_lua_multi(lua),
                Err(e) => (mlua::Value::Nil, e.kind, e.message).into_lua_multi(lua),
            }
        })?,
    )?;
    lua.load(PG).set_name("=pg").call((kernel.clone(), h))
}

fn parse(op: &str, arg: mlua::Value) -> Result<PgOp, HostError> {
    let text = |v: &mlua::Value| match v {
        mlua::Value::String(s) => Some(s.to_string_lossy()),
        _ => None,
    };
    Ok(match op {
        "open" => PgOp::Open,
        "join" | "leave" => {
            let mlua::Value::Table(t) = arg else { return Err(HostError::invalid(format!("{op} takes group names"))) };
            let names: Vec<String> = t
                .sequence_values::<String>()
                .collect::<mlua::Result<_>>()
                .map_err(|e| HostError::invalid(e.to_string()))?;
            if op == "join" { PgOp::Join(names) } else { PgOp::Leave(names) }
        }
        "members" | "local_members" => {
            let group = text(&arg).ok_or_else(|| HostError::invalid("a group name is required"))?;
            PgOp::Members { group, local: op == "local_members" }
        }
        "groups" => PgOp::Groups { local: false },
        "local_groups" => PgOp::Groups { local: true },
        "watch" => PgOp::Watch(text(&arg)),
        "unwatch" => match arg {
            mlua::Value::Integer(i) => PgOp::Unwatch(i as u64),
            _ => return Err(HostError::invalid("a subscription id is required")),
        },
        "release" => PgOp::Release,
        other => return Err(HostError::invalid(format!("unknown pg operation {other}"))),
    })
}
