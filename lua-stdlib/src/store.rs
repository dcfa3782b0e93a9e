//! The `store` module's bindings: argument checks and the two host calls
//! (`store_info`, `store_call`) that `store.lua` builds the handles on.

use std::rc::Rc;

use mlua::{IntoLuaMulti, Lua, MultiValue, Table};

use crate::{Host, HostError, PutCond, StoreOp, Value};

const STORE: &str = include_str!("store.lua");

/// The longest key a store takes, in bytes.
pub const MAX_KEY: usize = 1024;
/// The largest page `list` returns.
const MAX_LIMIT: usize = 1000;

/// Builds the `store` module table.
pub(crate) fn module(lua: &Lua, host: &Rc<dyn Host>, kernel: &Table, err_mt: &Table) -> mlua::Result<Table> {
    let h = lua.create_table()?;
    let x = host.clone();
    h.set(
        "store_info",
        lua.create_function(move |lua, id: String| match x.store_info(&id) {
            Ok(info) => {
                let t = lua.create_table()?;
                t.set("backend", info.backend)?;
                t.set("consistency", info.consistency)?;
                t.set("durable", info.durable)?;
                t.set("conditional_put", info.conditional_put)?;
                t.set("ttl", true)?;
                t.set("list", true)?;
                t.set("versioned", true)?;
                t.into_lua_multi(lua)
            }
            Err(e) => fail(lua, e),
        })?,
    )?;
    let x = host.clone();
    let emt = err_mt.clone();
    h.set(
        "store_call",
        lua.create_function(move |lua, (call, store, op, args): (u64, String, String, Table)| {
            let op = match parse(&op, &args, &emt) {
                Ok(op) => op,
                Err(e) => return fail(lua, e),
            };
            match x.store_call(call, &store, op) {
                Ok(()) => true.into_lua_multi(lua),
                Err(e) => fail(lua, e),
            }
        })?,
    )?;
    lua.load(STORE).set_name("=store").call((kernel.clone(), h))
}

fn fail(lua: &Lua, e: HostError) -> mlua::Result<MultiValue> {
    (mlua::Value::Nil, e.kind, e.message).into_lua_multi(lua)
}

/// Checks a call's arguments and builds the operation.
fn parse(op: &str, args: &Table, err_mt: &Table) -> Result<StoreOp, HostError> {
    let key = || key(args.get::<mlua::Value>("key").unwrap_or(mlua::Value::Nil));
    Ok(match op {
        "get" => StoreOp::Get { key: key()? },
        "entry" => StoreOp::Entry { key: key()? },
        "has" => StoreOp::Has { key: key()? },
        "delete" => StoreOp::Delete { key: key()? },
        "set" => StoreOp::Set { key: key()?, value: value(args, err_mt)?, ttl_ms: ttl(args)? },
        "put" => {
            let absent = matches!(args.get::<mlua::Value>("only_if_absent"), Ok(mlua::Value::Boolean(true)));
            let version = match args.get::<mlua::Value>("if_version") {
                Ok(mlua::Value::Nil) => None,
                Ok(mlua::Value::Integer(n)) if n > 0 => Some(n as u64),
                Ok(mlua::Value::Number(n)) if n >= 1.0 && n.fract() == 0.0 => Some(n as u64),
                _ => return Err(HostError::invalid("if_version must be a positive integer (a version from s:entry)")),
            };
            let cond = match (absent, version) {
                (true, Some(_)) => {
                    return Err(HostError::invalid("only_if_absent and if_version cannot be used together"));
                }
                (true, None) => PutCond::Absent,
                (false, Some(v)) => PutCond::Version(v),
                (false, None) => PutCond::Always,
            };
            StoreOp::Put { key: key()?, value: value(args, err_mt)?, ttl_ms: ttl(args)?, cond }
        }
        "list" => {
            let text = |name: &str| match args.get::<mlua::Value>(name) {
                Ok(mlua::Value::Nil) => Ok(None),
                Ok(mlua::Value::String(s)) => Ok(Some(s.to_string_lossy())),
                _ => Err(HostError::invalid(format!("list option {name} must be a string"))),
            };
            let limit = match args.get::<mlua::Value>("limit") {
                Ok(mlua::Value::Nil) => 100,
                Ok(mlua::Value::Integer(n)) if n > 0 => (n as usize).min(MAX_LIMIT),
                _ => return Err(HostError::invalid("list limit must be a positive integer")),
            };
            StoreOp::List { prefix: text("prefix")?.unwrap_or_default(), after: text("after")?, limit }
        }
        other => return Err(HostError::invalid(format!("unknown store operation {other}"))),
    })
}

fn key(v: mlua::Value) -> Result<String, HostError> {
    match v {
        mlua::Value::String(s) => {
            let k = s.to_str().map_err(|_| HostError::invalid("store key must be UTF-8"))?.to_string();
            if k.is_empty() {
                Err(HostError::invalid("store key must not be empty"))
            } else if k.len() > MAX_KEY {
                Err(HostError::invalid(format!("store key longer than {MAX_KEY} bytes")))
            } else {
                Ok(k)
            }
        }
        other => Err(HostError::invalid(format!("store key must be a string, got {}", other.type_name()))),
    }
}

fn value(args: &Table, err_mt: &Table) -> Result<Value, HostError> {
    let v = args.get::<mlua::Value>("value").unwrap_or(mlua::Value::Nil);
    if v.is_nil() {
        return Err(HostError::invalid("store value must not be nil (use delete to remove a key)"));
    }
    Value::from_lua(&v, Some(err_mt)).map_err(|e| HostError::invalid(e.to_string()))
}

/// `ttl`: a duration like every other in the API, milliseconds as a
/// number or a string (`"500ms"`, `"2m"`).
fn ttl(args: &Table) -> Result<Option<u64>, HostError> {
    let bad = || HostError::invalid("ttl must be a positive duration: milliseconds or a string such as \"30s\"");
    match args.get::<mlua::Value>("ttl") {
        Ok(mlua::Value::Nil) => Ok(None),
        Ok(mlua::Value::Integer(n)) if n > 0 => Ok(Some(n as u64)),
        Ok(mlua::Value::Number(n)) if n > 0.0 && n.is_finite() => Ok(Some(n.ceil() as u64)),
        Ok(mlua::Value::String(s)) => {
            let ms = crate::parse_ms(&s.to_string_lossy()).map_err(|_| bad())?;
            if ms > 0.0 { Ok(Some(ms.ceil() as u64)) } else { Err(bad()) }
        }
        _ => Err(bad()),
    }
}
