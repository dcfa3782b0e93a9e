//! Isolation between processes, the sandbox, preemption, the memory limit,
//! json, and bad arguments that must never crash the node.

#[path = "common/harness.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use wippy_runtime::Value;

#[test]
fn processes_of_one_definition_share_no_top_level_state() {
    // One worker: both processes live in the same Lua state.
    let h = start(
        1,
        &[
            (
                "t:counter",
                r#"
local count = 0                    -- a top-level local
Hits = (Hits or 0) + 1             -- a global
return { main = function(parent)
    count = count + 1
    Hits = Hits + 1
    process.send(parent, "ready", 1)
    process.inbox():receive()      -- both stay alive at the same time
    count = count + 1
    return { count = count, hits = Hits, rawg = rawget(_G or {}, "Hits") }
end }
"#,
            ),
            (
                "t:main",
                r#"
return { main = function()
    local me = process.pid()
    local a = process.spawn_monitored("t:counter", HOST, me)
    local b = process.spawn_monitored("t:counter", HOST, me)
    eq(msg():topic(), "ready", "a ready"); eq(msg():topic(), "ready", "b ready")
    process.send(a, "go"); process.send(b, "go")
    for _ = 1, 2 do
        local ev = event(process.event.EXIT)
        eq(ev.result.error, nil, "counter error")
        eq(ev.result.value.count, 2, "top-level local shared between processes")
        eq(ev.result.value.hits, 2, "global shared between processes")
    end
    eq(Hits, nil, "a global of another definition leaked into this process")
    return "ok"
end }
"#,
            ),
        ],
    );
    h.run_ok("t:main", vec![]);
}

#[test]
fn globals_set_by_one_process_are_invisible_to_another() {
    lua_ok_with(
        1,
        r#"
return { main = function()
    Shared = "from main"
    eq(process.exec("t:peek", HOST), "nil", "global of main visible in another process")
    -- overriding a builtin in one process does not affect the next
    print = function() error("hijacked") end
    eq(process.exec("t:peek_print", HOST), "function", "builtin replaced in another process")
    return "ok"
end }
"#,
        &[
            ("t:peek", "return { main = function() return tostring(Shared) end }"),
            ("t:peek_print", "return { main = function() print('peek_print can print'); return type(print) end }"),
        ],
    );
}

#[test]
fn the_sandbox_hides_dangerous_libraries() {
    lua_ok(
        1,
        r#"
return { main = function()
    eq(io, nil, "io"); eq(debug, nil, "debug"); eq(load, nil, "load")
    eq(loadstring, nil, "loadstring"); eq(dofile, nil, "dofile"); eq(loadfile, nil, "loadfile")
    eq(package, nil, "package"); eq(collectgarbage, nil, "collectgarbage")
    eq(os.execute, nil, "os.execute"); eq(os.exit, nil, "os.exit"); eq(os.remove, nil, "os.remove")
    eq(os.getenv, nil, "os.getenv"); eq(os.rename, nil, "os.rename"); eq(os.tmpname, nil, "os.tmpname")
    for _, name in ipairs({ "io", "os", "debug", "package", "ffi", "nope" }) do
        local ok, err = pcall(require, name)
        eq(ok, false, "require('" .. name .. "') must fail")
    end
    -- what is there works
    eq(type(os.time()), "number", "os.time")
    eq(string.format("%03d", 7), "007", "string.format")
    eq(("abc"):upper(), "ABC", "string methods")
    eq(math.max(1, 5), 5, "math")
    eq(table.concat({ 1, 2 }, "-"), "1-2", "table")
    eq(utf8.char(72), "H", "utf8")
    for _, m in ipairs({ "time", "json", "logger", "system" }) do
        assert(require(m) ~= nil, "require('" .. m .. "')")
    end
    return "ok"
end }
"#,
    );
}

#[test]
fn library_tables_are_read_only() {
    lua_ok_with(
        1,
        r#"
return { main = function()
    local function fails(what, f)
        local ok, err = pcall(f)
        eq(ok, false, what .. " must raise")
        has(tostring(err), "read-only", what .. " error")
    end
    fails("string.x = 1", function() string.x = 1 end)
    fails("string.format = nil", function() string.format = nil end)
    fails("table.insert = f", function() table.insert = print end)
    fails("math.pi = 3", function() math.pi = 3 end)
    fails("os.time = f", function() os.time = print end)
    fails("process.send = f", function() process.send = print end)
    fails("channel.new = f", function() channel.new = print end)
    fails("errors.INVALID = x", function() errors.INVALID = "x" end)
    fails("coroutine.wrap = f", function() coroutine.wrap = print end)
    fails("require('time').sleep = f", function() require("time").sleep = print end)
    fails("require('json').encode = f", function() require("json").encode = print end)
    -- the string metatable cannot be reached to patch methods
    eq(getmetatable(""), false, "string metatable is hidden")
    eq(process.exec("t:check_string", HOST), "clean", "another process sees string unchanged")
    return "ok"
end }
"#,
        &[("t:check_string", CHECK_STRING)],
    );
}

const CHECK_STRING: &str = "return { main = function() return (string.x == nil and string.y == nil and string.format ~= nil) and 'clean' or 'dirty' end }";

/// `rawset` skips `__newindex`: a library proxy shared by the processes of
/// a worker must still not carry one process's change to another.
#[test]
fn rawset_cannot_change_a_library_for_other_processes() {
    lua_ok_with(
        1,
        r#"
return { main = function()
    pcall(rawset, string, "y", 1)
    pcall(rawset, table, "insert", "patched")
    eq(process.exec("t:check_string", HOST), "clean", "another process sees string.y set by rawset")
    eq(process.exec("t:check_table", HOST), "function", "another process sees table.insert patched by rawset")
    return "ok"
end }
"#,
        &[
            ("t:check_string", CHECK_STRING),
            ("t:check_table", "return { main = function() return type(table.insert) end }"),
        ],
    );
}

/// `while true do end` on the only worker: the other processes, which only
/// need the run queue (spawn from Lua, same-worker messages), still finish.
#[test]
fn an_endless_loop_is_preempted() {
    let h = start(
        1,
        &[
            ("t:loop", "return { main = function() while true do end end }"),
            ("t:square", "return { main = function(parent, x) process.send(parent, 'square', x * x) end }"),
            (
                "t:main",
                r#"
return { main = function()
    local inbox = process.inbox()
    -- spawned from Lua, the loops share this worker (and there is only one)
    for _ = 1, 2 do assert(process.spawn("t:loop", HOST)) end
    local sum = 0
    for i = 1, 5 do
        assert(process.spawn("t:square", HOST, process.pid(), i))
        -- a plain receive: no timer, only the run queue can bring the answer
        sum = sum + inbox:receive():payload():data()
    end
    return sum
end }
"#,
            ),
        ],
    );
    let t0 = Instant::now();
    let r = h.run("t:main", vec![]);
    assert_eq!(r.as_ref().ok().map(to_json), Some(serde_json::json!(55)), "{}", show(&r));
    let elapsed = t0.elapsed();
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?} next to two endless loops");
    assert_eq!(h.node().live(), 2, "both loops should still be running");
}

#[test]
fn a_busy_loop_is_preempted_and_others_keep_running() {
    // One worker: the looper and the others share it.
    let h = start(
        1,
        &[
            ("t:loop", "return { main = function() while true do end end }"),
            (
                "t:work",
                r#"
return { main = function()
    local sum = 0
    for i = 1, 1000 do sum = sum + i end
    time.sleep(20)
    return sum
end }
"#,
            ),
        ],
    );
    let looper = h.node().spawn("t:loop", HOST, vec![]).unwrap();
    let t0 = Instant::now();
    for _ in 0..3 {
        let r = h.run("t:work", vec![]);
        assert_eq!(r.as_ref().ok().map(to_json), Some(serde_json::json!(500500)), "{}", show(&r));
    }
    let elapsed = t0.elapsed();
    assert!(elapsed < Duration::from_secs(5), "others were starved by the loop for {elapsed:?}");
    assert_eq!(h.node().live(), 1, "the loop ({looper}) should still be alive");
}

#[test]
fn several_busy_loops_do_not_starve_a_timer() {
    lua_ok_with(
        1,
        r#"
return { main = function()
    for _ = 1, 3 do assert(process.spawn("t:spin", HOST)) end
    local t0 = time.monotonic()
    time.sleep(30)
    local late = time.monotonic() - t0
    assert(late < 2000, "a 30 ms sleep took " .. late .. " ms next to busy loops")
    -- a busy process can still be asked to stop by a message it polls for
    local spinner = process.spawn_monitored("t:spin_until_told", HOST)
    time.sleep(20)
    process.send(spinner, "stop")
    local ev = event(process.event.EXIT, 5000)
    eq(ev.result.value, "told", "spinner stopped")
    return "ok"
end }
"#,
        &[
            ("t:spin", "return { main = function() local x = 0; while true do x = x + 1 end end }"),
            (
                "t:spin_until_told",
                r#"
return { main = function()
    local inbox = process.inbox()
    while true do
        for _ = 1, 10000 do end
        local r = channel.select{ inbox:case_receive(), default = true }
        if not r.default then return "told" end
    end
end }
"#,
            ),
        ],
    );
}

#[test]
fn a_process_over_the_memory_limit_dies_and_its_worker_goes_on() {
    let mut opts = options(1);
    opts.memory_limit = 64 << 20;
    let mut defs: Vec<(&str, &str)> = STD_DEFS.to_vec();
    defs.push((
        "t:hog",
        r#"
return { main = function()
    local t, i = {}, 0
    while true do
        i = i + 1
        -- big steps: the allocation that crosses the limit is (almost
        -- certainly) the hog's, not a small one of a neighbour on the worker
        t[i] = string.rep("x", 1 << 20) .. i
    end
end }
"#,
    ));
    defs.push((
        "t:main",
        r#"
return { main = function()
    local echo = process.spawn("t:echo", HOST)
    process.send(echo, "ping", 0)
    eq(msg():payload():data(), 0, "echo before the hog")
    local hog = process.spawn_monitored("t:hog", HOST)
    -- keep talking to the echo process while the hog grows
    local n = 0
    local exit
    while not exit do
        n = n + 1
        process.send(echo, "ping", n)
        local r = channel.select{ process.inbox():case_receive(), process.events():case_receive(), time.after(15000):case_receive() }
        if r.channel == process.events() then
            exit = r.value
        elseif r.channel == process.inbox() then
            eq(r.value:payload():data(), n, "echo reply")
        else
            error("neither the hog died nor echo answered within 15 s")
        end
    end
    eq(exit.from, hog, "exit from hog")
    has(exit.result.error, "memory limit", "hog's error")
    -- the worker and the other process are fine afterwards
    process.send(echo, "ping", "after")
    while true do
        local d = msg(5000):payload():data()
        if d == "after" then break end
        eq(d, n, "only the reply to the in-flight ping may come first")
    end
    local t = {}
    for i = 1, 1000 do t[i] = string.rep("y", 100) end
    eq(#t, 1000, "can allocate again")
    return "ok"
end }
"#,
    ));
    let h = start_with(opts, &defs);
    h.run_ok("t:main", vec![]);
}

#[test]
fn a_process_that_exceeds_memory_on_its_own_reports_it_to_rust() {
    let mut opts = options(1);
    opts.memory_limit = 32 << 20;
    let h = start_with(
        opts,
        &[
            ("t:hog", "return { main = function() local s = 'x'; while true do s = s .. s end end }"),
            ("t:ok", "return { main = function() return string.rep('z', 10) end }"),
        ],
    );
    let r = h.run("t:hog", vec![]);
    match &r {
        Err(e) => assert!(e.contains("memory limit"), "error does not mention the memory limit: {e}"),
        Ok(_) => panic!("the hog finished: {}", show(&r)),
    }
    let r = h.run("t:ok", vec![]);
    assert_eq!(r.as_ref().ok().and_then(|v| v.as_str()), Some("zzzzzzzzzz"), "{}", show(&r));
}

#[test]
fn json_roundtrip_and_errors() {
    lua_ok(
        1,
        r#"
return { main = function()
    local v = { id = 7, name = "wippy", ok = true, ratio = 0.5, tags = { "a", "b" }, nested = { deep = { 1, 2, 3 } }, empty = {} }
    local text, err = json.encode(v)
    eq(err, nil, "encode error"); eq(type(text), "string", "encode result")
    local back, err2 = json.decode(text)
    eq(err2, nil, "decode error")
    eq(back.id, 7, "id"); eq(math.type(back.id), "integer", "integral number decodes as integer")
    eq(back.name, "wippy", "name"); eq(back.ok, true, "bool"); eq(back.ratio, 0.5, "float")
    eq(back.tags[2], "b", "array"); eq(#back.nested.deep, 3, "nested array")
    eq(json.encode({ 1, 2, 3 }), "[1,2,3]", "array encoding")
    eq(json.encode("a\"b"), '"a\\"b"', "string escaping")
    eq(json.decode("null"), nil, "null")
    local arr = json.decode('[1, null, 3]')
    eq(arr[1], 1, "array with null [1]"); eq(arr[3], 3, "array with null [3]")
    eq(json.decode('"\\u00e9"'), "é", "unicode escape")
    -- errors
    local r, e = json.decode("{bad")
    eq(r, nil, "malformed"); eq(e.kind, errors.INVALID, "malformed kind"); assert(#tostring(e) > 0, "message")
    r, e = json.decode("[1, 2")
    eq(r, nil, "truncated"); eq(e.kind, errors.INVALID, "truncated kind")
    r, e = json.encode({ f = function() end })
    eq(r, nil, "function"); eq(e.kind, errors.INVALID, "function kind")
    local cyc = {}; cyc.self = cyc
    r, e = json.encode(cyc)
    eq(r, nil, "cycle"); eq(e.kind, errors.INVALID, "cycle kind")
    r, e = json.encode(0/0)
    eq(r, nil, "NaN"); eq(e.kind, errors.INVALID, "NaN kind")
    r, e = json.encode(math.huge)
    eq(r, nil, "inf"); eq(e.kind, errors.INVALID, "inf kind")
    return "ok"
end }
"#,
    );
}

#[test]
fn json_encode_rejects_mixed_tables() {
    lua_ok(
        1,
        r#"
return { main = function()
    local r, e = json.encode({ 1, 2, x = 3 })
    eq(r, nil, "mixed keys"); eq(e and e.kind, errors.INVALID, "mixed keys kind")
    return "ok"
end }
"#,
    );
}

#[test]
fn bad_arguments_never_crash_the_node() {
    let h = start(
        2,
        &[(
            "t:main",
            r#"
return { main = function()
    local calls = {
        function() return process.send() end,
        function() return process.send(1, 2, 3) end,
        function() return process.send({}, "t") end,
        function() return process.spawn() end,
        function() return process.spawn({}, {}) end,
        function() return process.spawn_monitored(1) end,
        function() return process.spawn_linked("x") end,
        function() return process.exec() end,
        function() return process.monitor() end,
        function() return process.link({}) end,
        function() return process.cancel(nil) end,
        function() return process.cancel(process.pid(), {}) end,
        function() return process.terminate() end,
        function() return process.set_options() end,
        function() return process.set_options(5) end,
        function() return process.registry.register() end,
        function() return process.registry.register({}) end,
        function() return process.registry.lookup() end,
        function() return process.registry.unregister(5) end,
        function() return channel.select() end,
        function() return channel.select(5) end,
        function() return json.decode() end,
        function() return json.decode(5) end,
        function() return json.encode() end,
        function() return time.after({}) end,
        function() return time.sleep("not a duration") end,
        function() return process.listen() end,
        function() return process.unlisten(5) end,
        function() return require("system").exit("x") end,
    }
    for i, f in ipairs(calls) do
        -- raising or returning an error are both fine; crashing is not
        pcall(f)
    end
    return "survived"
end }
"#,
        )],
    );
    for _ in 0..3 {
        let r = h.run("t:main", vec![]);
        assert_eq!(r.as_ref().ok().and_then(|v| v.as_str()), Some("survived"), "{}", show(&r));
    }
    assert!(h.node().wait_exit(Some(Duration::from_millis(1))).is_none(), "a bad argument requested a node exit");
}

#[test]
fn bad_arguments_come_back_as_invalid_errors() {
    lua_ok(
        1,
        r#"
return { main = function()
    local function invalid(what, ok, err)
        assert(not ok, what .. " must fail")
        assert(type(err) == "table" and err.kind == errors.INVALID, what .. ": expected an INVALID error, got " .. tostring(err and err.kind or err))
    end
    invalid("send()", process.send())
    invalid("send(pid) without topic", process.send(process.pid()))
    invalid("spawn()", process.spawn())
    invalid("monitor()", process.monitor())
    invalid("cancel(nil)", process.cancel(nil))
    invalid("register()", process.registry.register())
    invalid("lookup(5)", process.registry.lookup(5))
    return "ok"
end }
"#,
    );
}

#[test]
fn json_decode_of_a_non_string_is_an_invalid_error() {
    lua_ok(
        1,
        r#"
return { main = function()
    local ok, v, err = pcall(json.decode, {})
    eq(ok, true, "json.decode({}) raised: " .. tostring(v))
    eq(v, nil, "value"); eq(err and err.kind, errors.INVALID, "kind")
    return "ok"
end }
"#,
    );
}

#[test]
fn errors_global_lists_the_kinds() {
    lua_ok(
        1,
        r#"
return { main = function()
    for _, k in ipairs({ "INVALID", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "UNAVAILABLE", "TIMEOUT" }) do
        eq(type(errors[k]), "string", "errors." .. k)
    end
    local _, err = process.registry.lookup("nobody")
    eq(err.kind, errors.NOT_FOUND, "kind compares with the constant")
    eq(tostring(err), err.message, "tostring(err)")
    eq(type(err.message), "string", "message")
    return "ok"
end }
"#,
    );
}

/// Thousands of short processes spawned from Lua, without preemption.
#[test]
fn many_processes_come_and_go() {
    many_processes(2000, Duration::from_millis(500));
}

/// The same with the default time slice, so that the spawning loop gets
/// preempted in the middle of `process.spawn`.
#[test]
fn many_processes_come_and_go_under_preemption() {
    many_processes(3000, Duration::from_millis(5));
}

fn many_processes(n: i64, time_slice: Duration) {
    let mut opts = options(2);
    opts.time_slice = time_slice;
    let h = start_with(
        opts,
        &[
            ("t:leaf", "return { main = function(i) return i * 2 end }"),
            (
                "t:main",
                r#"
return { main = function(n)
    local sum = 0
    for i = 1, n do assert(process.spawn_monitored("t:leaf", HOST, i)) end
    for _ = 1, n do
        local ev = event(process.event.EXIT, 15000)
        eq(ev.result.error, nil, "leaf error")
        sum = sum + ev.result.value
    end
    return sum
end }
"#,
            ),
        ],
    );
    let r = h.run("t:main", vec![Value::Int(n)]);
    assert_eq!(r.as_ref().ok().map(to_json), Some(serde_json::json!(n * (n + 1))), "{}", show(&r));
    wait_for("all processes to end", RESULT_TIMEOUT, || h.node().live() == 0);
}

#[test]
fn system_module_on_a_single_node() {
    lua_ok(
        1,
        r#"
return { main = function()
    local system = require("system")
    local id = system.node.id()
    eq(type(id), "string", "node id")
    eq(string.sub(process.pid(), 1, #id + 2), "{" .. id .. "@", "the pid carries the node id")
    eq(system.node.role(), "non-member", "role")
    eq(system.cluster.leader(), "", "leader")
    for _, f in ipairs({ "is_leader", "is_member", "role", "term", "commit_index", "stats" }) do
        local v, err = system.raft[f]()
        eq(v, nil, "raft." .. f)
        has(tostring(err), "raft not available", "raft." .. f .. " error")
    end
    local ok, err = system.lock.acquire("x")
    eq(ok, nil, "lock.acquire"); eq(err.kind, errors.UNAVAILABLE, "lock.acquire kind")
    ok, err = system.lock.release("x")
    eq(ok, nil, "lock.release"); eq(err.kind, errors.UNAVAILABLE, "lock.release kind")
    return "ok"
end }
"#,
    );
}

/// docs/lua/system.md, "Without cluster" column.
#[test]
fn system_cluster_calls_without_a_cluster_follow_the_docs() {
    lua_ok(
        1,
        r#"
return { main = function()
    local system = require("system")
    eq(system.node.addr(), "", "node.addr")
    local members = system.cluster.members()
    eq(type(members), "table", "cluster.members")
    eq(#members, 1, "one member")
    local me = members[1]
    eq(me.id, system.node.id(), "member id"); eq(me.state, "alive", "member state")
    eq(me.role, "non-member", "member role"); eq(me.is_local, true, "member is_local")
    eq(system.cluster.size(), 1, "cluster.size")
    local _, err = system.raft.term()
    eq(err.kind, errors.UNAVAILABLE, "raft error kind")
    return "ok"
end }
"#,
    );
}

/// Starting and stopping nodes in a loop: every shutdown must return.
#[test]
fn node_shutdown_never_hangs() {
    for i in 0..500 {
        let h = start(2, &[("t:q", "return { main = function(x) return x end }")]);
        let r = h.run("t:q", vec![Value::Int(i)]);
        assert_eq!(r.as_ref().ok().map(to_json), Some(serde_json::json!(i)), "{}", show(&r));
        let code = h.shutdown(Duration::from_secs(5));
        assert_eq!(code, 0, "iteration {i}");
    }
}

/// An exit requested from Lua reaches the embedding program.
#[test]
fn system_exit_reaches_node_wait_exit() {
    let h = start(1, &[("t:main", "return { main = function() require('system').exit(7); return 'asked' end }")]);
    let r = h.run("t:main", vec![]);
    assert!(r.is_ok(), "{}", show(&r));
    assert_eq!(h.node().wait_exit(Some(Duration::from_secs(10))), Some(7));
    assert_eq!(h.shutdown(Duration::from_secs(30)), 7, "shutdown returns the requested code");
}
