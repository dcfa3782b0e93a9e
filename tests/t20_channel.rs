//! Channels and `channel.select` inside one process, timers (`time.after`,
//! `time.sleep`), and user coroutines that block.

#[path = "common/harness.rs"]
mod common;

use common::*;

#[test]
fn buffered_channel_is_fifo_and_bounded() {
    lua_ok(
        1,
        r#"
return { main = function()
    local ch = channel.new(3)
    eq(ch:send("a"), true, "send a"); ch:send("b"); ch:send("c")
    -- full: a fourth send is not ready
    local r = channel.select{ ch:case_send("d"), default = true }
    eq(r.default, true, "send on a full buffer must not be ready")
    eq(recv(ch), "a", "first"); eq(recv(ch), "b", "second")
    -- room again
    r = channel.select{ ch:case_send("d"), default = true }
    eq(r.default, nil, "send with room must be ready"); eq(r.channel, ch, "select result channel"); eq(r.ok, true, "select send ok")
    eq(recv(ch), "c", "third"); eq(recv(ch), "d", "fourth")
    -- empty: receive is not ready
    r = channel.select{ ch:case_receive(), default = true }
    eq(r.default, true, "receive on an empty channel must not be ready")
    -- nil and false are values too
    ch:send(false)
    local v, ok = recv(ch)
    eq(v, false, "false value"); eq(ok, true, "false value ok")
    return "ok"
end }
"#,
    );
}

#[test]
fn unbuffered_send_waits_for_a_receiver() {
    lua_ok(
        1,
        r#"
return { main = function()
    local ch = channel.new()          -- capacity 0
    local r = channel.select{ ch:case_send(1), default = true }
    eq(r.default, true, "unbuffered send without a receiver must not complete")
    -- a blocking send with nobody receiving loses against a timer
    local t0 = time.monotonic()
    local timer = time.after(40)
    r = channel.select{ ch:case_send(2), timer:case_receive() }
    eq(r.channel, timer, "timer must win over an unmatched unbuffered send")
    assert(time.monotonic() - t0 >= 35, "select returned before the timer")
    -- nothing was left behind by the abandoned send
    r = channel.select{ ch:case_receive(), default = true }
    eq(r.default, true, "an abandoned select send must not leave a value")
    return "ok"
end }
"#,
    );
}

#[test]
fn close_drains_then_reports_closed() {
    lua_ok(
        1,
        r#"
return { main = function()
    local ch = channel.new(4)
    ch:send(1); ch:send(2)
    ch:close()
    ch:close()                        -- closing twice does nothing
    local v, ok = ch:receive(); eq(v, 1, "drain 1"); eq(ok, true, "drain 1 ok")
    v, ok = ch:receive(); eq(v, 2, "drain 2"); eq(ok, true, "drain 2 ok")
    v, ok = ch:receive(); eq(v, nil, "closed value"); eq(ok, false, "closed ok flag")
    v, ok = ch:receive(); eq(ok, false, "still closed")
    local r = channel.select{ ch:case_receive() }
    eq(r.channel, ch, "select on closed"); eq(r.ok, false, "select on closed ok"); eq(r.value, nil, "select on closed value")
    local sent, err = pcall(ch.send, ch, 3)
    eq(sent, false, "send on a closed channel must raise")
    has(tostring(err), "closed", "send on closed error")
    -- an unbuffered channel closed with nothing in it
    local u = channel.new()
    u:close()
    v, ok = u:receive(); eq(v, nil, "unbuffered closed value"); eq(ok, false, "unbuffered closed ok")
    return "ok"
end }
"#,
    );
}

#[test]
fn select_picks_a_ready_case_or_default() {
    lua_ok(
        1,
        r#"
return { main = function()
    local a, b = channel.new(1), channel.new(1)
    local r = channel.select{ a:case_receive(), b:case_receive(), default = true }
    eq(r.default, true, "nothing ready -> default")
    b:send("from b")
    r = channel.select{ a:case_receive(), b:case_receive(), default = true }
    eq(r.channel, b, "ready channel"); eq(r.value, "from b", "value"); eq(r.ok, true, "ok")
    -- with both ready, every selected value is one that was sent, each once
    local seen = {}
    for i = 1, 20 do
        a:send("a" .. i); b:send("b" .. i)
        for _ = 1, 2 do
            local x = channel.select{ a:case_receive(), b:case_receive() }
            assert(not seen[x.value], "value received twice: " .. tostring(x.value))
            seen[x.value] = true
        end
    end
    for i = 1, 20 do assert(seen["a" .. i] and seen["b" .. i], "value lost at " .. i) end
    -- bad arguments
    local res, err = channel.select{}
    eq(res, nil, "empty select"); eq(err.kind, errors.INVALID, "empty select kind")
    res, err = channel.select{ "not a case" }
    eq(res, nil, "bad case"); eq(err.kind, errors.INVALID, "bad case kind")
    assert(not pcall(channel.new, -1), "negative capacity must raise")
    return "ok"
end }
"#,
    );
}

#[test]
fn select_with_time_after_times_out_or_gets_the_message() {
    lua_ok(
        1,
        r#"
return { main = function()
    local inbox = process.inbox()
    -- nothing arrives: the timer fires, not before its time
    local t0 = time.monotonic()
    local timer = time.after("60ms")
    local r = channel.select{ inbox:case_receive(), timer:case_receive() }
    local waited = time.monotonic() - t0
    eq(r.channel, timer, "timeout case")
    assert(waited >= 55, "timer fired early: " .. waited)
    assert(waited < 2000, "timer fired late: " .. waited)
    eq(type(r.value:unix()), "number", "time.after delivers a Time")
    -- a message arrives first: the timer loses
    assert(process.spawn("t:sleeper", HOST, process.pid(), 20))
    t0 = time.monotonic()
    timer = time.after(3000)
    r = channel.select{ inbox:case_receive(), timer:case_receive() }
    eq(r.channel, inbox, "message case")
    eq(r.value:topic(), "woke", "message topic")
    assert(time.monotonic() - t0 < 2500, "waited for the timer although a message came")
    return "ok"
end }
"#,
    );
}

#[test]
fn durations_and_clocks() {
    lua_ok(
        1,
        r#"
return { main = function()
    local t0 = time.monotonic()
    time.sleep(30)
    time.sleep("20ms")
    local dt = time.monotonic() - t0
    assert(dt >= 45, "slept too little: " .. dt)
    local ok, r, err = pcall(time.sleep, -5)
    local bad = (not ok) or (r == nil and err ~= nil)
    assert(bad, "a negative duration must be an error")
    local a = time.now()
    time.sleep(5)
    local b = time.now()
    assert(b:sub(a) > 0, "wall clock went backwards")
    assert(math.abs(a:unix() - os.time()) <= 2, "time.now():unix() is not the wall clock")
    eq(a:unix_nano() // 1000000000, a:unix(), "unix_nano agrees with unix")
    return "ok"
end }
"#,
    );
}

#[test]
fn sleep_returns_true_and_bad_durations_are_invalid_errors() {
    lua_ok(
        1,
        r#"
return { main = function()
    eq(time.sleep(1), true, "sleep(ms) returns true")
    eq(time.sleep("1ms"), true, "sleep(text) returns true")
    local ok, err = time.sleep(-5)
    eq(ok, nil, "negative duration"); eq(err and err.kind, errors.INVALID, "negative duration kind")
    ok, err = time.sleep("soon")
    eq(ok, nil, "unparsable duration"); eq(err and err.kind, errors.INVALID, "unparsable duration kind")
    local ch
    ch, err = time.after("soon")
    eq(ch, nil, "time.after unparsable"); eq(err and err.kind, errors.INVALID, "time.after kind")
    return "ok"
end }
"#,
    );
}

#[test]
fn coroutine_library_works_inside_a_process() {
    lua_ok(
        1,
        r#"
return { main = function()
    -- a generator
    local gen = coroutine.wrap(function(n) for i = 1, n do coroutine.yield(i * i) end return "done" end)
    local got = {}
    got[1] = gen(4)
    for i = 2, 4 do got[i] = gen() end
    eq(table.concat(got, ","), "1,4,9,16", "generator values")
    eq(gen(), "done", "generator return")
    -- create/resume/status with values passed both ways
    local co = coroutine.create(function(a) local b = coroutine.yield(a + 1); return b * 2 end)
    local ok, v = coroutine.resume(co, 10); eq(ok, true, "resume 1"); eq(v, 11, "yielded")
    eq(coroutine.status(co), "suspended", "status")
    ok, v = coroutine.resume(co, 5); eq(v, 10, "returned"); eq(coroutine.status(co), "dead", "dead")
    -- an error inside a coroutine is returned by resume, the process goes on
    local bad = coroutine.create(function() error("inner failure") end)
    ok, v = coroutine.resume(bad)
    eq(ok, false, "resume of a failing coroutine"); has(v, "inner failure", "coroutine error")
    -- yielding from the process body itself is an error, not a crash
    assert(not pcall(coroutine.yield, 1), "yield outside a coroutine must fail")
    return "ok"
end }
"#,
    );
}

#[test]
fn blocking_calls_inside_a_user_coroutine() {
    lua_ok(
        1,
        r#"
return { main = function()
    local me = process.pid()
    -- time.sleep inside a generator
    local gen = coroutine.wrap(function()
        for i = 1, 3 do
            time.sleep(10)
            coroutine.yield(i)
        end
    end)
    local t0 = time.monotonic()
    eq(gen(), 1, "first after sleep"); eq(gen(), 2, "second"); eq(gen(), 3, "third")
    assert(time.monotonic() - t0 >= 25, "the sleeps did not happen")
    -- an inbox receive inside a coroutine
    assert(process.spawn("t:sleeper", HOST, me, 15))
    local co = coroutine.create(function()
        local m = process.inbox():receive()
        coroutine.yield(m:topic())
        return m:payload():data()
    end)
    local ok, topic = coroutine.resume(co)
    eq(ok, true, "resume"); eq(topic, "woke", "topic received inside coroutine")
    local ok2, payload = coroutine.resume(co)
    eq(ok2, true, "resume 2"); eq(payload, 15, "payload")
    -- select with a timer inside a coroutine
    local inner = coroutine.wrap(function()
        local t = time.after(10)
        local r = channel.select{ process.inbox():case_receive(), t:case_receive() }
        return r.channel == t
    end)
    eq(inner(), true, "select timeout inside a coroutine")
    -- a process spawned and awaited from inside a coroutine
    local via = coroutine.wrap(function() return process.exec("t:quick", HOST, "exec in coroutine") end)
    eq(via(), "exec in coroutine", "exec inside a coroutine")
    return "ok"
end }
"#,
    );
}

#[test]
fn channels_cannot_cross_processes() {
    lua_ok(
        1,
        r#"
return { main = function()
    local ok, err = process.send(process.pid(), "ch", channel.new(1))
    eq(ok, nil, "sending a channel"); eq(err.kind, errors.INVALID, "kind")
    local p, err2 = process.spawn("t:quick", HOST, { ch = channel.new() })
    eq(p, nil, "spawning with a channel argument"); eq(err2.kind, errors.INVALID, "spawn kind")
    return "ok"
end }
"#,
    );
}
