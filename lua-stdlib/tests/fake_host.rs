//! The Lua surface against a fake engine: no scheduler, no threads. The
//! kernel is loaded into a plain Lua state and driven by hand, which checks
//! what does not need a running process (channels that never block, the
//! sandbox, json, errors) and that every host call goes through `Host`.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Lua, LuaOptions, StdLib};
use wippy_lua_stdlib::{Host, HostError, HostResult, Level, RaftStatus, SendOutcome, SpawnFlags, Value};

#[derive(Default)]
struct FakeHost {
    printed: RefCell<Vec<String>>,
    timers: RefCell<Vec<(u64, f64)>>,
    exits: RefCell<Vec<i32>>,
    raft: RefCell<Option<RaftStatus>>,
}

impl Host for FakeHost {
    fn wake(&self, _slot: u32) {}
    fn send(&self, _from: u32, dest: &str, _topic: &str, _payload: Value) -> HostResult<SendOutcome> {
        Err(HostError::not_found(format!("could not resolve: {dest}")))
    }
    fn spawn(&self, id: &str, _host: &str, _flags: SpawnFlags, _t: &mlua::Thread) -> HostResult<(i64, String)> {
        Err(HostError::not_found(format!("process definition not found: {id}")))
    }
    fn source(&self, id: &str) -> HostResult<(String, String, String)> {
        Err(HostError::not_found(format!("process definition not found: {id}")))
    }
    fn spawn_remote(&self, _w: usize, pid: &str, _id: &str, _f: SpawnFlags, _a: Vec<Value>) -> HostResult<String> {
        Ok(pid.to_string())
    }
    fn exit(&self, _slot: u32, _result: Result<Value, String>) {}
    fn monitor(&self, _slot: u32, _dest: &str) -> HostResult<()> {
        Ok(())
    }
    fn unmonitor(&self, _slot: u32, _dest: &str) -> HostResult<()> {
        Ok(())
    }
    fn link(&self, _slot: u32, _dest: &str) -> HostResult<()> {
        Ok(())
    }
    fn unlink(&self, _slot: u32, _dest: &str) -> HostResult<()> {
        Ok(())
    }
    fn cancel(&self, _slot: u32, _dest: &str, _reason: &str) -> HostResult<()> {
        Ok(())
    }
    fn terminate(&self, _slot: u32, _dest: &str) -> HostResult<()> {
        Ok(())
    }
    fn trap_links(&self, _slot: u32, _on: bool) {}
    fn register(&self, _slot: u32, _name: &str, _pid: Option<&str>, _scope: i64) -> HostResult<()> {
        Ok(())
    }
    fn lookup(&self, _name: &str) -> HostResult<String> {
        Err(HostError::not_found("name not registered"))
    }
    fn unregister(&self, _slot: u32, _name: &str, _scope: i64) -> HostResult<bool> {
        Ok(false)
    }
    fn timer(&self, id: u64, ms: f64) {
        self.timers.borrow_mut().push((id, ms));
    }
    fn now_ms(&self) -> f64 {
        42.0
    }
    fn wall_ns(&self) -> i64 {
        1_700_000_000_000_000_000
    }
    fn set_running(&self, _thread: &mlua::Thread) {}
    fn take_preempted(&self) -> bool {
        false
    }
    fn node_exit(&self, code: i32) {
        self.exits.borrow_mut().push(code);
    }
    fn node_id(&self) -> String {
        "fake".into()
    }
    fn print(&self, line: &[u8]) {
        self.printed.borrow_mut().push(String::from_utf8_lossy(line).into_owned());
    }
    fn log(&self, _level: Level, _msg: &str, _fields: &[(String, String)]) {}
    fn raft_status(&self) -> Option<RaftStatus> {
        self.raft.borrow().clone()
    }
}

/// A state with the kernel installed, and a function that evaluates code in
/// a fresh process environment (as the kernel gives each process).
fn setup() -> (Lua, Rc<FakeHost>, mlua::Function) {
    // SAFETY: the kernel needs `debug.traceback`; nothing else reaches `debug`.
    let lua = unsafe {
        Lua::unsafe_new_with(
            StdLib::COROUTINE
                | StdLib::TABLE
                | StdLib::STRING
                | StdLib::MATH
                | StdLib::UTF8
                | StdLib::OS
                | StdLib::DEBUG,
            LuaOptions::default(),
        )
    };
    let host = Rc::new(FakeHost::default());
    wippy_lua_stdlib::install(&lua, host.clone(), Vec::new()).expect("kernel installs");
    let std: mlua::Table = lua.named_registry_value("wippy.std").expect("sandbox table registered");
    let run = lua
        .create_function(move |lua, src: String| {
            let env = lua.create_table()?;
            let mt = lua.create_table()?;
            mt.set("__index", std.clone())?;
            env.set_metatable(Some(mt))?;
            lua.load(src).set_environment(env).eval::<mlua::Value>()
        })
        .expect("runner");
    (lua, host, run)
}

#[test]
fn channels_json_and_errors_work_without_an_engine() {
    let (_lua, host, run) = setup();
    let out: String = run
        .call(
            r#"
        local ch = channel.new(2)
        ch:send(1); ch:send("two")
        local a = ch:receive()
        local b = ch:receive()
        local json = require("json")
        local s = json.encode({a = a, b = b})
        local v, err = json.decode("{bad")
        local r = channel.select{ ch:case_receive(), default = true }
        print("done")
        return table.concat({tostring(a), b, tostring(v == nil), err.kind, tostring(r.default), tostring(s:find('"b":"two"') ~= nil)}, ",")
    "#,
        )
        .unwrap();
    assert_eq!(out, "1,two,true,INVALID,true,true");
    assert_eq!(host.printed.borrow().as_slice(), ["done"]);
}

#[test]
fn the_sandbox_hides_the_dangerous_parts_and_freezes_libraries() {
    let (_lua, _host, run) = setup();
    let out: String = run
        .call(
            r#"
        local hidden = {}
        for _, name in ipairs({"io", "debug", "load", "loadfile", "dofile", "package", "collectgarbage"}) do
            if _ENV[name] == nil then hidden[#hidden + 1] = name end
        end
        local ok1 = pcall(function() string.upper = nil end)
        local ok2 = pcall(rawset, string, "x", 1)
        local ok3 = pcall(require, "io")
        return table.concat(hidden, " ") .. "|" .. tostring(ok1) .. tostring(ok2) .. tostring(ok3) .. "|" .. tostring(os.execute)
    "#,
        )
        .unwrap();
    assert_eq!(out, "io debug load loadfile dofile package collectgarbage|falsefalsefalse|nil");
}

#[test]
fn host_calls_reach_the_host() {
    let (_lua, host, run) = setup();
    let out: String = run
        .call(
            r#"
        local ch, err = require("time").after("250ms")
        local _, bad = require("time").after("soon")
        local pid, serr = process.registry.lookup("nobody")
        require("system").exit(3)
        return tostring(ch ~= nil) .. "," .. bad.kind .. "," .. serr.kind .. "," .. require("system").node.id()
    "#,
        )
        .unwrap();
    assert_eq!(out, "true,INVALID,NOT_FOUND,fake");
    assert_eq!(host.timers.borrow().as_slice(), [(1, 250.0)]);
    assert_eq!(host.exits.borrow().as_slice(), [3]);
}

#[test]
fn raft_answers_unavailable_until_the_host_has_a_status() {
    let (_lua, host, run) = setup();
    let probe = r#"
        local system = require("system")
        local v, err = system.raft.term()
        local parts = { tostring(v), err and err.kind or "-", system.node.role(), system.cluster.leader() }
        local leader, lerr = system.raft.is_leader()
        if lerr == nil then
            local stats = system.raft.stats()
            parts[#parts + 1] = tostring(leader) .. " " .. tostring(system.raft.is_member()) .. " "
                .. system.raft.role() .. " " .. system.raft.commit_index() .. " " .. stats.state
        end
        return table.concat(parts, ",")
    "#;
    let out: String = run.call(probe).unwrap();
    assert_eq!(out, "nil,UNAVAILABLE,non-member,");
    *host.raft.borrow_mut() = Some(RaftStatus {
        role: "leader".into(),
        term: 4,
        commit_index: 17,
        leader: "n1".into(),
        stats: vec![("state".into(), "Leader".into())],
    });
    let out: String = run.call(probe).unwrap();
    assert_eq!(out, "4,-,leader,n1,true true leader 17 Leader");
}
