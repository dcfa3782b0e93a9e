//! Monitors, links, trap_links, terminate, cancel and exec.

#[path = "common/harness.rs"]
mod common;

use common::*;

#[test]
fn monitor_sees_a_normal_exit_with_its_value() {
    lua_ok(
        1,
        r#"
return { main = function()
    local child = process.spawn_monitored("t:quick", HOST, { answer = 42 })
    local ev = event(process.event.EXIT)
    eq(ev.kind, "pid.exit", "kind constant")
    eq(ev.from, child, "from")
    eq(ev.result.error, nil, "no error")
    eq(ev.result.value.answer, 42, "result value")
    eq(type(ev.at), "number", "at")
    assert(math.abs(ev.at - time.now():unix() * 1000) < 5000, "at is not Unix milliseconds: " .. ev.at)
    return "ok"
end }
"#,
    );
}

#[test]
fn monitor_sees_an_error_with_message_and_traceback() {
    lua_ok_with(
        1,
        r#"
return { main = function()
    local child = process.spawn_monitored("t:deep", HOST)
    local ev = event(process.event.EXIT)
    eq(ev.from, child, "from")
    eq(ev.result.value, nil, "no value")
    has(ev.result.error, "deep trouble", "error message")
    has(ev.result.error, "stack traceback", "traceback")
    has(ev.result.error, "inner", "traceback names the failing function")
    return "ok"
end }
"#,
        &[(
            "t:deep",
            r#"
local function inner() error("deep trouble") end
local function outer() inner() end
return { main = function() outer() end }
"#,
        )],
    );
}

#[test]
fn a_failing_process_does_not_affect_others() {
    lua_ok(
        1,
        r#"
return { main = function()
    local echo = process.spawn("t:echo", HOST)
    for i = 1, 5 do assert(process.spawn("t:fail", HOST, "failure " .. i)) end
    local bad = process.spawn_monitored("t:fail", HOST, "last failure")
    local ev = event(process.event.EXIT)
    has(ev.result.error, "last failure", "error")
    assert(process.send(echo, "ping", "still there?"))
    eq(msg():payload():data(), "still there?", "echo answered after the failures")
    return "ok"
end }
"#,
    );
}

#[test]
fn error_values_and_non_string_errors_end_the_process_cleanly() {
    lua_ok_with(
        1,
        r#"
return { main = function()
    process.spawn_monitored("t:tbl_err", HOST)
    local ev = event(process.event.EXIT)
    assert(ev.result.error ~= nil, "an error with a table value must still be an error")
    process.spawn_monitored("t:nil_err", HOST)
    ev = event(process.event.EXIT)
    assert(ev.result.error ~= nil, "error(nil) must still be an error")
    return "ok"
end }
"#,
        &[
            ("t:tbl_err", "return { main = function() error({ code = 7 }) end }"),
            ("t:nil_err", "return { main = function() error(nil) end }"),
        ],
    );
}

#[test]
fn exec_returns_the_result_or_the_error() {
    lua_ok(
        1,
        r#"
return { main = function()
    eq(process.exec("t:quick", HOST, "hello"), "hello", "exec value")
    local t = process.exec("t:quick", HOST, { 1, 2, 3 })
    eq(#t, 3, "exec table value")
    local v, err = process.exec("t:fail", HOST, "exec failure")
    eq(v, nil, "exec of a failing process")
    eq(err.kind, errors.INTERNAL, "exec failure kind")
    has(tostring(err), "exec failure", "exec error message")
    has(tostring(err), "stack traceback", "exec error traceback")
    v, err = process.exec("t:missing", HOST)
    eq(v, nil, "exec of an unknown entry"); eq(err.kind, errors.NOT_FOUND, "exec unknown kind")
    -- exec does not leave an EXIT event behind
    no_event(30)
    return "ok"
end }
"#,
    );
}

/// Rust sees the parent's own result: killed by its failing linked child.
#[test]
fn linked_failure_kills_the_parent_without_trap_links() {
    let h = start(
        1,
        &[
            (
                "t:parent",
                r#"
return { main = function()
    assert(process.spawn_linked("t:fail", HOST))
    -- wait for something that never comes; the link must end us first
    local inbox = process.inbox()
    local r = channel.select{ inbox:case_receive(), time.after(5000):case_receive() }
    return "survived"
end }
"#,
            ),
            ("t:fail", "return { main = function() time.sleep(10); error('child failure') end }"),
        ],
    );
    let r = h.run("t:parent", vec![]);
    match r {
        Err(e) => assert_eq!(e, "linked process failed", "parent's error"),
        Ok(_) => panic!("parent survived its linked child's failure: {}", show(&r)),
    }
}

/// A monitor of the parent sees the parent's EXIT with "linked process failed";
/// the failure goes on along the parent's own links.
#[test]
fn linked_failure_propagates_along_a_chain() {
    lua_ok_with(
        1,
        r#"
return { main = function()
    process.set_options({ trap_links = true })
    -- main -link- middle -link- leaf; leaf fails
    local middle = process.spawn_linked_monitored("t:middle", HOST)
    local down = event(process.event.LINK_DOWN)
    eq(down.from, middle, "link down from middle")
    eq(down.result.error, "linked process failed", "middle died of the link")
    local exit = event(process.event.EXIT)
    eq(exit.from, middle, "exit from middle")
    eq(exit.result.error, "linked process failed", "middle's EXIT error")
    return "ok"
end }
"#,
        &[(
            "t:middle",
            r#"
return { main = function()
    assert(process.spawn_linked("t:fail", HOST, "leaf failure"))
    channel.new():receive()
end }
"#,
        )],
    );
}

#[test]
fn trap_links_turns_a_link_failure_into_an_event() {
    lua_ok(
        1,
        r#"
return { main = function()
    eq(process.get_options().trap_links, false, "trap_links default")
    eq(process.set_options({ trap_links = true }), true, "set_options")
    eq(process.get_options().trap_links, true, "trap_links after set")
    local child = process.spawn_linked("t:fail", HOST, "trapped failure")
    local ev = event(process.event.LINK_DOWN)
    eq(ev.kind, "pid.link.down", "kind constant")
    eq(ev.from, child, "from")
    has(ev.result.error, "trapped failure", "error")
    -- still alive and working
    local echo = process.spawn("t:echo", HOST)
    process.send(echo, "ping", 1)
    eq(msg():payload():data(), 1, "alive after LINK_DOWN")
    -- bad options
    local ok, err = process.set_options({ nope = true })
    eq(ok, false, "unknown option"); eq(err.kind, errors.INVALID, "unknown option kind")
    ok, err = process.set_options({ trap_links = "yes" })
    eq(ok, false, "non-boolean trap_links"); eq(err.kind, errors.INVALID, "non-boolean kind")
    return "ok"
end }
"#,
    );
}

#[test]
fn normal_exit_of_a_linked_child_propagates_nothing() {
    // Without trap_links: the parent must survive.
    let h = start(
        1,
        &[
            (
                "t:parent",
                r#"
return { main = function()
    local child = process.spawn_linked_monitored("t:quick", HOST, "fine")
    local ev = event(process.event.EXIT)
    eq(ev.from, child, "exit from"); eq(ev.result.value, "fine", "value")
    time.sleep(30)
    return "parent alive"
end }
"#,
            ),
            ("t:quick", "return { main = function(v) return v end }"),
        ],
    );
    let r = h.run("t:parent", vec![]);
    assert_eq!(r.as_ref().ok().and_then(|v| v.as_str()), Some("parent alive"), "{}", show(&r));
    // With trap_links: no LINK_DOWN event either.
    lua_ok(
        1,
        r#"
return { main = function()
    process.set_options({ trap_links = true })
    local child = process.spawn_linked_monitored("t:quick", HOST, "fine")
    local ev = event(process.event.EXIT)
    eq(ev.from, child, "exit from")
    no_event(50)
    return "ok"
end }
"#,
    );
}

#[test]
fn terminate_is_seen_by_monitors_and_links() {
    lua_ok(
        1,
        r#"
return { main = function()
    process.set_options({ trap_links = true })
    local a = process.spawn_monitored("t:forever", HOST)
    local b = process.spawn_linked("t:forever", HOST)
    time.sleep(5)
    eq(process.terminate(a), true, "terminate a")
    local ev = event(process.event.EXIT)
    eq(ev.from, a, "exit from"); has(ev.result.error, "terminated", "monitor sees terminated")
    eq(process.terminate(b), true, "terminate b")
    ev = event(process.event.LINK_DOWN)
    eq(ev.from, b, "link down from"); has(ev.result.error, "terminated", "link sees terminated")
    -- terminating a dead or unknown target
    local ok, err = process.terminate("nobody-by-that-name")
    eq(ok, nil, "unknown name"); eq(err.kind, errors.NOT_FOUND, "unknown name kind")
    ok, err = process.terminate(42)
    eq(ok, nil, "non-string dest"); eq(err.kind, errors.INVALID, "non-string dest kind")
    return "ok"
end }
"#,
    );
}

#[test]
fn terminate_self_ends_the_caller() {
    let h = start(
        1,
        &[("t:main", "return { main = function() process.terminate(process.pid()); return 'still running' end }")],
    );
    let r = h.run("t:main", vec![]);
    match &r {
        Err(e) => assert!(e.contains("terminated"), "error: {e}"),
        Ok(_) => panic!("process survived terminating itself: {}", show(&r)),
    }
}

#[test]
fn cancel_delivers_an_event_with_the_reason() {
    lua_ok_with(
        1,
        r#"
return { main = function()
    local t = process.spawn_monitored("t:cancellable", HOST, process.pid())
    eq(msg():topic(), "ready", "target ready")
    eq(process.cancel(t, "time to go"), true, "cancel")
    local ev = event(process.event.EXIT)
    eq(ev.from, t, "exit from")
    eq(ev.result.error, nil, "target returned normally")
    eq(ev.result.value.kind, "pid.cancel", "target saw CANCEL")
    eq(ev.result.value.reason, "time to go", "reason")
    eq(ev.result.value.from, process.pid(), "CANCEL from")
    -- cancel is a request: a target that ignores it keeps running
    local stubborn = process.spawn_monitored("t:forever", HOST)
    process.cancel(stubborn, "please")
    no_event(50)
    local ok, err = process.cancel("no-such-name", "x")
    eq(ok, nil, "cancel unknown"); eq(err.kind, errors.NOT_FOUND, "cancel unknown kind")
    return "ok"
end }
"#,
        &[(
            "t:cancellable",
            r#"
return { main = function(parent)
    local events = process.events()
    process.send(parent, "ready")
    local ev = recv(events, 10000)
    return { kind = ev.kind, reason = ev.reason, from = ev.from }
end }
"#,
        )],
    );
}

#[test]
fn link_unlink_monitor_unmonitor_after_spawn() {
    lua_ok(
        1,
        r#"
return { main = function()
    process.set_options({ trap_links = true })
    -- monitor, then unmonitor: no EXIT
    local a = process.spawn("t:wait", HOST)
    eq(process.monitor(a), true, "monitor")
    eq(process.unmonitor(a), true, "unmonitor")
    process.send(a, "go", 1)
    -- link, then unlink: no LINK_DOWN
    local b = process.spawn_monitored("t:fail_on_msg", HOST)
    eq(process.link(b), true, "link")
    eq(process.unlink(b), true, "unlink")
    process.send(b, "fail", "b fails after unlink")
    local ev = event(process.event.EXIT)
    eq(ev.from, b, "exit from b"); has(ev.result.error, "b fails after unlink", "b error")
    no_event(50)
    -- monitor after spawn works
    local c = process.spawn("t:wait", HOST)
    process.monitor(c)
    process.send(c, "go", "c value")
    ev = event(process.event.EXIT)
    eq(ev.from, c, "exit from c"); eq(ev.result.value, "c value", "c value")
    -- link after spawn carries failures
    local d = process.spawn("t:fail_on_msg", HOST)
    process.link(d)
    process.send(d, "fail", "d fails while linked")
    ev = event(process.event.LINK_DOWN)
    eq(ev.from, d, "link down from d"); has(ev.result.error, "d fails while linked", "d error")
    -- errors
    local ok, err = process.monitor("no-such-name")
    eq(ok, nil, "monitor unknown"); eq(err.kind, errors.NOT_FOUND, "monitor unknown kind")
    ok, err = process.link(nil)
    eq(ok, nil, "link nil"); eq(err.kind, errors.INVALID, "link nil kind")
    return "ok"
end }
"#,
    );
}

#[test]
fn monitoring_a_dead_pid_reports_an_exit() {
    lua_ok(
        1,
        r#"
return { main = function()
    local p = process.spawn_monitored("t:quick", HOST, 1)
    event(process.event.EXIT)
    -- the process is gone: monitoring it now must still produce an EXIT
    -- (or fail), never hang silently
    local ok, err = process.monitor(p)
    if ok then
        local ev = event(process.event.EXIT, 2000)
        eq(ev.from, p, "exit from")
        assert(ev.result.error ~= nil, "a late monitor reports an error result")
    end
    return "ok"
end }
"#,
    );
}

#[test]
fn spawn_linked_monitored_reports_an_immediate_failure() {
    lua_ok(
        1,
        r#"
return { main = function()
    process.set_options({ trap_links = true })
    local p = process.spawn_linked_monitored("t:fail", HOST, "at once")
    local got_exit, got_down = false, false
    for _ = 1, 2 do
        local ev = recv(process.events())
        eq(ev.from, p, "event from")
        has(ev.result.error, "at once", "error")
        if ev.kind == process.event.EXIT then got_exit = true end
        if ev.kind == process.event.LINK_DOWN then got_down = true end
    end
    assert(got_exit and got_down, "expected both EXIT and LINK_DOWN")
    return "ok"
end }
"#,
    );
}

#[test]
fn process_event_constants_are_read_only() {
    lua_ok(
        1,
        r#"
return { main = function()
    eq(process.event.CANCEL, "pid.cancel", "CANCEL")
    eq(process.event.EXIT, "pid.exit", "EXIT")
    eq(process.event.LINK_DOWN, "pid.link.down", "LINK_DOWN")
    assert(not pcall(function() process.event.EXIT = "x" end), "process.event must be read-only")
    eq(process.event.EXIT, "pid.exit", "EXIT unchanged")
    return "ok"
end }
"#,
    );
}

/// Watcher and target on different workers (placed from Rust): monitor, link
/// and cancel all travel between workers.
#[test]
fn monitors_links_and_cancel_across_workers() {
    let h = start(
        2,
        &[
            (
                "t:watcher",
                r#"
return { main = function()
    process.set_options({ trap_links = true })
    local target = msg(10000):payload():data()
    local canceller = msg(10000):payload():data()
    eq(process.monitor(target), true, "monitor"); eq(process.link(target), true, "link")
    eq(process.monitor(canceller), true, "monitor canceller")
    eq(process.cancel(canceller, "from the other worker"), true, "cancel")
    local ev = event(process.event.EXIT)
    eq(ev.from, canceller, "canceller exit"); eq(ev.result.value, "from the other worker", "reason seen by the target")
    process.send(target, "fail", "cross-worker failure")
    local down = event(process.event.LINK_DOWN)
    eq(down.from, target, "link down from"); has(down.result.error, "cross-worker failure", "link down error")
    local exit = event(process.event.EXIT)
    eq(exit.from, target, "exit from"); has(exit.result.error, "cross-worker failure", "exit error")
    return "ok"
end }
"#,
            ),
            (
                "t:fail_on_msg",
                "return { main = function() local m = process.inbox():receive(); error(m:payload():data()) end }",
            ),
            (
                "t:cancellable",
                "return { main = function() local ev = process.events():receive(); return ev.reason end }",
            ),
        ],
    );
    let (watcher, rx) = h.node().spawn_watched("t:watcher", HOST, vec![]).unwrap();
    wait_for("watcher to start", RESULT_TIMEOUT, || h.node().live() == 1);
    let target = h.node().spawn("t:fail_on_msg", HOST, vec![]).unwrap();
    wait_for("target to start", RESULT_TIMEOUT, || h.node().live() == 2);
    let canceller = h.node().spawn("t:cancellable", HOST, vec![]).unwrap();
    assert_ne!(pid_counter(&watcher) % 2, pid_counter(&target) % 2, "watcher and target on the same worker");
    h.node().send(&watcher, "target", s(&target)).unwrap();
    h.node().send(&watcher, "canceller", s(&canceller)).unwrap();
    let r = rx.recv_timeout(RESULT_TIMEOUT).expect("watcher hung");
    assert_eq!(r.as_ref().ok().and_then(|v| v.as_str()), Some("ok"), "{}", show(&r));
}
