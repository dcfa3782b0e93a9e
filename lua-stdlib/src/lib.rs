//! The Lua surface of a wippy node.
//!
//! [`install`] turns a fresh Lua state into a worker state: it loads the
//! kernel (`kernel.lua`: process records, mailboxes, channels, select), the
//! sandbox every process sees (`sandbox.lua`), and the Rust-backed modules
//! (`json`, `logger`, `system`). The engine is reached only through the
//! [`Host`] trait, so this crate never depends on the runtime.
//!
//! LuaLS annotation files for editors live in `types/` next to this crate.
#![deny(missing_docs)]

mod duration;
mod host;
mod json;
mod pg;
mod store;
mod system;
mod value;

use std::ffi::c_void;
use std::rc::Rc;

use mlua::{Function, LightUserData, Lua, MultiValue, Table, Thread};

pub use duration::parse_ms;
pub use host::{
    ClusterMember, Host, HostError, HostResult, Level, LockOp, NameOp, PgOp, PutCond, RaftStatus, SendOutcome,
    SpawnFlags, StoreInfo, StoreOp,
};
pub use store::MAX_KEY;
pub use value::{MAX_DEPTH, Value, ValueError};

/// The value a kernel yield carries when a process waits for a wake-up.
pub const BLOCK: *mut c_void = std::ptr::dangling_mut::<c_void>();
/// The value a kernel yield carries when a process terminates itself.
pub const KILL: *mut c_void = std::ptr::without_provenance_mut(2);

const KERNEL: &str = include_str!("kernel.lua");
const SANDBOX: &str = include_str!("sandbox.lua");

/// Handles to the kernel entry points the worker loop calls.
#[derive(Clone)]
pub struct Kernel {
    /// `spawn_order(slot, pid, id, args) -> thread | nil, err`.
    pub spawn_order: Function,
    /// The kernel's slot → record table; Rust clears a slot when it is done with it.
    pub procs: Table,
    /// The kernel's slot → coroutine table; cleared together with `procs`.
    pub cos: Table,
    /// `done(slot, result)`: a process returned; forget it and record the result.
    pub done: Function,
    /// `fail(slot, err) -> string`: message and traceback of a failed process.
    pub fail: Function,
    /// `reap(slot)`: forget a process that Rust ended.
    pub reap: Function,
    /// `deliver(pid, topic, from, data)`.
    pub deliver: Function,
    /// `event(slot, kind, from, value, err, reason, at_ms)`.
    pub event: Function,
    /// `timer(id)`.
    pub timer: Function,
    /// `reply(call, value)` or `reply(call, nil, kind, message)`: the
    /// answer to a host call made through `K.await`.
    pub reply: Function,
    /// `CUR`: the engine writes the running slot into `CUR[1]` before each resume.
    pub cur: Table,
    /// The error metatable, for [`Value::to_lua`].
    pub err_mt: Table,
}

/// Builds an error object (`{kind, message}` with the kernel's metatable).
pub fn error_value(lua: &Lua, err_mt: &Table, kind: &str, message: &str) -> mlua::Result<mlua::Value> {
    let t = lua.create_table()?;
    t.raw_set("kind", kind)?;
    t.raw_set("message", message)?;
    t.set_metatable(Some(err_mt.clone()))?;
    Ok(mlua::Value::Table(t))
}

fn fail(lua: &Lua, e: HostError) -> mlua::Result<MultiValue> {
    (mlua::Value::Nil, e.kind, e.message).into_lua_multi(lua)
}

use mlua::IntoLuaMulti;

/// Installs the kernel and the standard modules into `lua`.
///
/// `fast` replaces entries of the host table (`wake`, `spawn`, `exit`) with
/// functions the engine provides itself, typically raw C functions for the
/// calls made on every message or spawn. Each must behave like the `Host`
/// method it replaces.
pub fn install(lua: &Lua, host: Rc<dyn Host>, fast: Vec<(&'static str, Function)>) -> mlua::Result<Kernel> {
    let h = host_table(lua, &host)?;
    for (name, f) in fast {
        h.set(name, f)?;
    }
    let k: Table = lua.load(KERNEL).set_name("=kernel").call((
        h.clone(),
        LightUserData(BLOCK),
        LightUserData(KILL),
        host.node_id(),
    ))?;
    let err_mt: Table = k.get("ERR")?;
    let extra = lua.create_table()?;
    extra.set("json", json::module(lua, &err_mt)?)?;
    extra.set("logger", logger(lua, &host)?)?;
    extra.set("system", system::module(lua, &host, &k, &err_mt)?)?;
    extra.set("store", store::module(lua, &host, &k, &err_mt)?)?;
    extra.set("pg", pg::module(lua, &host, &k, &err_mt)?)?;
    let hw = host.clone();
    extra.set(
        "write",
        lua.create_function(move |_, s: mlua::LuaString| {
            hw.print(&s.as_bytes());
            Ok(())
        })?,
    )?;
    let std: Table = lua.load(SANDBOX).set_name("=sandbox").call((k.clone(), extra))?;
    // What every process environment falls back to, for embedders and tests.
    lua.set_named_registry_value("wippy.std", std)?;
    Ok(Kernel {
        spawn_order: k.get("spawn_order")?,
        procs: k.get("PROCS")?,
        cos: k.get("COS")?,
        cur: k.get("CUR")?,
        done: k.get("done")?,
        fail: k.get("fail")?,
        reap: k.get("reap")?,
        deliver: k.get("deliver")?,
        event: k.get("event")?,
        timer: k.get("timer")?,
        reply: k.get("reply")?,
        err_mt,
    })
}

fn host_table(lua: &Lua, host: &Rc<dyn Host>) -> mlua::Result<Table> {
    let h = lua.create_table()?;
    let err_mt_cell: Rc<std::cell::OnceCell<Table>> = Rc::new(std::cell::OnceCell::new());

    let x = host.clone();
    h.set(
        "wake",
        lua.create_function(move |_, slot: u32| {
            x.wake(slot);
            Ok(())
        })?,
    )?;

    let x = host.clone();
    let emt = err_mt_cell.clone();
    h.set(
        "send",
        lua.create_function(move |lua, (slot, dest, topic, data): (u32, String, String, mlua::Value)| {
            let payload = match Value::from_lua(&data, emt.get()) {
                Ok(v) => v,
                Err(e) => return fail(lua, HostError::invalid(e.to_string())),
            };
            match x.send(slot, &dest, &topic, payload) {
                Ok(SendOutcome::Routed) => true.into_lua_multi(lua),
                Ok(SendOutcome::Local(pid)) => pid.into_lua_multi(lua),
                Err(e) => fail(lua, e),
            }
        })?,
    )?;

    let x = host.clone();
    h.set(
        "spawn",
        lua.create_function(move |lua, (id, hst, flags, co): (String, String, u32, Thread)| {
            match x.spawn(&id, &hst, flags, &co) {
                Ok((slot, pid)) => (slot, pid).into_lua_multi(lua),
                Err(e) => fail(lua, e),
            }
        })?,
    )?;

    let x = host.clone();
    h.set(
        "source",
        lua.create_function(move |lua, id: String| match x.source(&id) {
            Ok((src, name, method)) => (src, name, method).into_lua_multi(lua),
            Err(e) => fail(lua, e),
        })?,
    )?;

    let x = host.clone();
    let emt = err_mt_cell.clone();
    h.set(
        "spawn_remote",
        lua.create_function(move |lua, (worker, pid, id, flags, args): (usize, String, String, u32, MultiValue)| {
            let mut vals = Vec::with_capacity(args.len());
            for a in args.iter() {
                match Value::from_lua(a, emt.get()) {
                    Ok(v) => vals.push(v),
                    Err(e) => return fail(lua, HostError::invalid(e.to_string())),
                }
            }
            match x.spawn_remote(worker, &pid, &id, flags, vals) {
                Ok(pid) => pid.into_lua_multi(lua),
                Err(e) => fail(lua, e),
            }
        })?,
    )?;

    let x = host.clone();
    let emt = err_mt_cell.clone();
    let exit = lua.create_function(move |_, (slot, ok, res): (u32, bool, mlua::Value)| {
        let result = if ok {
            Ok(Value::from_lua(&res, emt.get()).unwrap_or(Value::Nil))
        } else {
            Err(match &res {
                mlua::Value::String(s) => s.to_string_lossy(),
                other => format!("{other:?}"),
            })
        };
        x.exit(slot, result);
        Ok(())
    })?;
    h.set("exit", exit.clone())?;
    h.set("exit_table", exit)?;

    for (name, op) in [("monitor", 0u8), ("unmonitor", 1), ("link", 2), ("unlink", 3), ("terminate", 4)] {
        let x = host.clone();
        h.set(
            name,
            lua.create_function(move |lua, (slot, dest): (u32, String)| {
                let r = match op {
                    0 => x.monitor(slot, &dest),
                    1 => x.unmonitor(slot, &dest),
                    2 => x.link(slot, &dest),
                    3 => x.unlink(slot, &dest),
                    _ => x.terminate(slot, &dest),
                };
                match r {
                    Ok(()) => true.into_lua_multi(lua),
                    Err(e) => fail(lua, e),
                }
            })?,
        )?;
    }

    let x = host.clone();
    h.set(
        "cancel",
        lua.create_function(move |lua, (slot, dest, reason): (u32, String, String)| {
            match x.cancel(slot, &dest, &reason) {
                Ok(()) => true.into_lua_multi(lua),
                Err(e) => fail(lua, e),
            }
        })?,
    )?;

    let x = host.clone();
    h.set(
        "trap_links",
        lua.create_function(move |_, (slot, on): (u32, bool)| {
            let _: () = x.trap_links(slot, on);
            Ok(())
        })?,
    )?;

    let x = host.clone();
    h.set(
        "register",
        lua.create_function(move |lua, (slot, name, pid, scope): (u32, String, Option<String>, i64)| {
            match x.register(slot, &name, pid.as_deref(), scope) {
                Ok(()) => true.into_lua_multi(lua),
                Err(e) => fail(lua, e),
            }
        })?,
    )?;
    let x = host.clone();
    h.set(
        "lookup",
        lua.create_function(move |lua, name: String| match x.lookup(&name) {
            Ok(pid) => pid.into_lua_multi(lua),
            Err(e) => fail(lua, e),
        })?,
    )?;
    let x = host.clone();
    h.set(
        "unregister",
        lua.create_function(move |lua, (slot, name, scope): (u32, String, i64)| {
            match x.unregister(slot, &name, scope) {
                Ok(b) => b.into_lua_multi(lua),
                Err(e) => fail(lua, e),
            }
        })?,
    )?;
    let x = host.clone();
    h.set(
        "name_call",
        lua.create_function(
            move |lua, (call, slot, op, name, pid, scope): (u64, u32, String, String, Option<String>, i64)| {
                let op = match op.as_str() {
                    "register" => NameOp::Register { name, pid, scope },
                    _ => NameOp::Unregister { name, scope },
                };
                match x.name_call(call, slot, op) {
                    Ok(()) => true.into_lua_multi(lua),
                    Err(e) => fail(lua, e),
                }
            },
        )?,
    )?;

    let x = host.clone();
    h.set(
        "timer",
        lua.create_function(move |_, (id, ms): (u64, f64)| {
            let _: () = x.timer(id, ms);
            Ok(())
        })?,
    )?;
    let x = host.clone();
    h.set("now", lua.create_function(move |_, ()| Ok(x.now_ms()))?)?;
    let x = host.clone();
    h.set("wall_ns", lua.create_function(move |_, ()| Ok(x.wall_ns()))?)?;
    let x = host.clone();
    h.set(
        "set_running",
        lua.create_function(move |_, co: Thread| {
            x.set_running(&co);
            Ok(())
        })?,
    )?;
    let x = host.clone();
    h.set("take_preempted", lua.create_function(move |_, ()| Ok(x.take_preempted()))?)?;
    h.set(
        "duration_ms",
        lua.create_function(|lua, d: mlua::Value| {
            let r = match &d {
                mlua::Value::Integer(i) if *i >= 0 => Ok(*i as f64),
                mlua::Value::Number(n) if *n >= 0.0 && n.is_finite() => Ok(*n),
                mlua::Value::String(s) => parse_ms(&s.to_string_lossy()),
                other => Err(format!(
                    "invalid duration: expected milliseconds or a string like \"250ms\", got {}",
                    other.type_name()
                )),
            };
            match r {
                Ok(ms) => ms.into_lua_multi(lua),
                Err(e) => (mlua::Value::Nil, e).into_lua_multi(lua),
            }
        })?,
    )?;

    // The error metatable exists only once the kernel has run; fill the cell lazily.
    let cell = err_mt_cell.clone();
    let set_mt = lua.create_function(move |_, mt: Table| {
        let _ = cell.set(mt);
        Ok(())
    })?;
    h.set("set_err_mt", set_mt)?;
    Ok(h)
}

fn logger(lua: &Lua, host: &Rc<dyn Host>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (name, level) in
        [("debug", Level::Debug), ("info", Level::Info), ("warn", Level::Warn), ("error", Level::Error)]
    {
        let x = host.clone();
        t.set(
            name,
            lua.create_function(move |_, (_this, msg, fields): (mlua::Value, mlua::Value, Option<Table>)| {
                let msg = match msg {
                    mlua::Value::String(s) => s.to_string_lossy(),
                    other => format!("{other:?}"),
                };
                let mut kv = Vec::new();
                if let Some(f) = fields {
                    for (k, v) in f.pairs::<mlua::Value, mlua::Value>().flatten() {
                        kv.push((display(&k), display(&v)));
                    }
                }
                x.log(level, &msg, &kv);
                Ok(())
            })?,
        )?;
    }
    Ok(t)
}

fn display(v: &mlua::Value) -> String {
    match v {
        mlua::Value::String(s) => s.to_string_lossy(),
        mlua::Value::Integer(i) => i.to_string(),
        mlua::Value::Number(n) => n.to_string(),
        mlua::Value::Boolean(b) => b.to_string(),
        mlua::Value::Nil => "nil".into(),
        other => other.type_name().to_string(),
    }
}
