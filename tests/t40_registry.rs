//! `process.registry` on a single node: LOCAL names, and the cluster scopes
//! being unavailable.

#[path = "common/harness.rs"]
mod common;

use common::*;

#[test]
fn register_lookup_unregister() {
    lua_ok(
        1,
        r#"
return { main = function()
    local me = process.pid()
    local R = process.registry
    eq(R.LOCAL, 0, "LOCAL"); eq(R.EVENTUAL, 1, "EVENTUAL"); eq(R.CONSISTENT, 2, "CONSISTENT"); eq(R.STRONG, 3, "STRONG")
    local p, err = R.lookup("svc")
    eq(p, nil, "lookup before register"); eq(err.kind, errors.NOT_FOUND, "lookup before register kind")
    eq(R.register("svc"), true, "register self")
    eq(R.lookup("svc"), me, "lookup")
    eq(R.register("svc"), true, "registering again for the same pid is idempotent")
    eq(R.register("svc", me, R.LOCAL), true, "explicit pid and scope")
    eq(R.unregister("svc"), true, "unregister")
    p, err = R.lookup("svc")
    eq(p, nil, "lookup after unregister"); eq(err.kind, errors.NOT_FOUND, "after unregister kind")
    local r, e = R.unregister("svc")
    eq(r, false, "unregister of an absent name"); eq(e, nil, "no error for absent name")
    -- a name for another process
    local other = process.spawn("t:forever", HOST)
    eq(R.register("other", other), true, "register another pid")
    eq(R.lookup("other"), other, "lookup other")
    return "ok"
end }
"#,
    );
}

#[test]
fn a_name_belongs_to_one_pid() {
    lua_ok(
        1,
        r#"
return { main = function()
    local R = process.registry
    local a = process.spawn("t:forever", HOST)
    local b = process.spawn("t:forever", HOST)
    eq(R.register("only", a), true, "first owner")
    local ok, err = R.register("only", b)
    eq(ok, nil, "second owner"); eq(err.kind, errors.ALREADY_EXISTS, "second owner kind")
    ok, err = R.register("only")
    eq(ok, nil, "caller as second owner"); eq(err.kind, errors.ALREADY_EXISTS, "caller kind")
    eq(R.lookup("only"), a, "still the first owner")
    -- one pid may hold several names
    eq(R.register("alias", a), true, "second name for the same pid")
    eq(R.lookup("alias"), a, "alias")
    return "ok"
end }
"#,
    );
}

#[test]
fn the_name_is_released_when_the_owner_exits() {
    lua_ok_with(
        1,
        r#"
return { main = function()
    local R = process.registry
    local owner = process.spawn_monitored("t:named", HOST, process.pid())
    eq(msg():topic(), "registered", "owner registered")
    eq(R.lookup("short-lived"), owner, "lookup while alive")
    process.send("short-lived", "stop")
    event(process.event.EXIT)
    -- released on exit (allow the release to land)
    local deadline = time.monotonic() + 2000
    while R.lookup("short-lived") ~= nil do
        assert(time.monotonic() < deadline, "name still registered after the owner exited")
        time.sleep(5)
    end
    eq(R.register("short-lived"), true, "the name can be taken again")
    -- an owner that fails releases it too
    local victim = process.spawn_monitored("t:fail_on_msg", HOST)
    eq(R.register("victim", victim), true, "register victim")
    process.send("victim", "fail", "victim fails")
    event(process.event.EXIT)
    deadline = time.monotonic() + 2000
    while R.lookup("victim") ~= nil do
        assert(time.monotonic() < deadline, "name of a failed process still registered")
        time.sleep(5)
    end
    return "ok"
end }
"#,
        &[(
            "t:named",
            r#"
return { main = function(parent)
    assert(process.registry.register("short-lived"))
    process.send(parent, "registered")
    process.inbox():receive()
end }
"#,
        )],
    );
}

#[test]
fn names_work_as_destinations() {
    lua_ok(
        1,
        r#"
return { main = function()
    local R = process.registry
    local echo = process.spawn_monitored("t:echo", HOST)
    eq(R.register("echo", echo), true, "register echo")
    eq(process.send("echo", "ping", "by name"), true, "send by name")
    local m = msg()
    eq(m:payload():data(), "by name", "reply"); eq(m:from(), echo, "reply from the named pid")
    eq(process.cancel("echo", "bye"), true, "cancel by name")
    eq(process.send("echo", "stop"), true, "stop by name")
    local ev = event(process.event.EXIT)
    eq(ev.from, echo, "exit from")
    local ok, err = process.send("echo", "ping", 1)
    eq(ok, nil, "send to a released name"); eq(err.kind, errors.NOT_FOUND, "released name kind")
    return "ok"
end }
"#,
    );
}

#[test]
fn raft_scopes_are_unavailable_on_a_single_node_and_eventual_names_stay_local() {
    lua_ok(
        1,
        r#"
return { main = function()
    local R = process.registry
    -- Without a cluster an EVENTUAL name is this node's alone.
    eq(R.register("ev", nil, R.EVENTUAL), true, "eventual register")
    eq(R.lookup("ev"), process.pid(), "eventual lookup")
    local ok, err = R.register("ev", nil, R.LOCAL)
    eq(ok, true, "the same process may hold it locally too")
    eq(R.unregister("ev", R.EVENTUAL), true, "eventual unregister")
    eq(R.unregister("ev", R.EVENTUAL), false, "eventual unregister twice")
    eq(R.unregister("ev"), true, "local unregister")
    eq(R.lookup("ev"), nil, "gone")
    for _, scope in ipairs({ R.CONSISTENT, R.STRONG }) do
        local ok, err = R.register("cluster-name", nil, scope)
        eq(ok, nil, "register in scope " .. scope)
        eq(err.kind, errors.UNAVAILABLE, "register kind in scope " .. scope)
        local p = R.lookup("cluster-name")
        eq(p, nil, "nothing registered in scope " .. scope)
    end
    ok, err = R.register("bad-scope", nil, 7)
    eq(ok, nil, "unknown scope"); eq(err.kind, errors.INVALID, "unknown scope kind")
    ok, err = R.register("", nil)
    eq(ok, nil, "empty name"); eq(err.kind, errors.INVALID, "empty name kind")
    ok, err = R.register("bad-pid", "{garbage")
    eq(ok, nil, "malformed pid"); eq(err.kind, errors.INVALID, "malformed pid kind")
    assert(not pcall(function() R.LOCAL = 5 end), "process.registry must be read-only")
    return "ok"
end }
"#,
    );
}

#[test]
fn names_are_visible_from_every_worker_and_from_rust() {
    let mut defs: Vec<(&str, &str)> = STD_DEFS.to_vec();
    defs.push((
        "t:registrar",
        r#"
return { main = function(name)
    assert(process.registry.register(name))
    local m = process.inbox():receive()
    return m:payload():data()
end }
"#,
    ));
    defs.push((
        "t:caller",
        r#"
return { main = function(...)
    for _, name in ipairs({ ... }) do
        local pid, err = process.registry.lookup(name)
        assert(pid, tostring(err))
        eq(process.send(name, "hello", "hello " .. name), true, "send to " .. name)
    end
    return "ok"
end }
"#,
    ));
    let h = start(2, &defs);
    let mut procs = Vec::new();
    for i in 0..4 {
        let name = format!("reg-{i}");
        procs.push((name.clone(), h.node().spawn_watched("t:registrar", HOST, vec![s(&name)]).unwrap()));
        wait_for("name registration", RESULT_TIMEOUT, || h.node().lookup(&name).is_some());
    }
    let workers: std::collections::HashSet<u64> = procs.iter().map(|(_, (p, _))| pid_counter(p) % 2).collect();
    assert_eq!(workers.len(), 2, "registrars should be on both workers");
    for (name, (pid, _)) in &procs {
        assert_eq!(h.node().lookup(name).as_deref(), Some(pid.as_str()), "Node::lookup({name})");
    }
    // Two registrars are reached by name from Rust, two from a Lua process
    // (which sits on one of the workers, so one of its sends crosses).
    for (name, _) in &procs[..2] {
        h.node().send(name, "hello", s(&format!("hello {name}"))).unwrap();
    }
    let (_, caller) = h.node().spawn_watched("t:caller", HOST, vec![s("reg-2"), s("reg-3")]).unwrap();
    let r = caller.recv_timeout(RESULT_TIMEOUT).expect("caller hung");
    assert_eq!(r.as_ref().ok().and_then(|v| v.as_str()), Some("ok"), "{}", show(&r));
    for (name, (pid, rx)) in procs {
        let r = rx.recv_timeout(RESULT_TIMEOUT).unwrap_or_else(|_| panic!("{name} ({pid}) hung"));
        assert_eq!(r.as_ref().ok().and_then(|v| v.as_str()), Some(format!("hello {name}").as_str()), "{}", show(&r));
        wait_for("name release", RESULT_TIMEOUT, || h.node().lookup(&name).is_none());
    }
    let err = h.node().send("reg-0", "hello", s("x")).unwrap_err();
    assert_eq!(err.kind, "NOT_FOUND");
}

#[test]
fn terminate_by_name_releases_the_name() {
    lua_ok(
        1,
        r#"
return { main = function()
    local R = process.registry
    local victim = process.spawn_monitored("t:forever", HOST)
    eq(R.register("victim", victim), true, "register victim")
    eq(process.terminate("victim"), true, "terminate by name")
    local ev = event(process.event.EXIT)
    eq(ev.from, victim, "exit from"); has(ev.result.error, "terminated", "error")
    local deadline = time.monotonic() + 2000
    while R.lookup("victim") ~= nil do
        assert(time.monotonic() < deadline, "name of a terminated process still registered")
        time.sleep(5)
    end
    return "ok"
end }
"#,
    );
}
