//! Processes through the runtime API: PIDs, spawn, send/receive, message
//! ordering and copying, listen/inbox routing, monitors, exec, terminate,
//! cancel, isolation between processes.

#[path = "common/harness.rs"]
mod common;

use common::*;
use wippy_runtime::Value;

#[test]
fn pid_has_the_documented_shape_and_is_unique() {
    let h = start(
        2,
        &[
            (
                "t:main",
                r#"
return { main = function()
    local me = process.pid()
    assert(string.match(me, "^{t@test:host|0x%x%x%x%x%x+}$"), "bad pid: " .. me)
    assert(not string.find(me, "%u", string.find(me, "|", 1, true)), "hex digits must be lowercase: " .. me)
    local seen = { [me] = true }
    for i = 1, 20 do
        local p, err = process.spawn("t:idle", HOST)
        assert(p, tostring(err))
        assert(not seen[p], "pid reused: " .. p)
        seen[p] = true
    end
    return me
end }
"#,
            ),
            ("t:idle", "return { main = function() return 1 end }"),
        ],
    );
    let (pid, rx) = h.node().spawn_watched("t:main", HOST, vec![]).unwrap();
    let r = rx.recv_timeout(RESULT_TIMEOUT).unwrap();
    assert_eq!(r.as_ref().ok().and_then(|v| v.as_str()), Some(pid.as_str()), "{}", show(&r));
}

#[test]
fn spawn_arguments_arrive_as_parameters_and_return_value_is_the_result() {
    let h = start(
        1,
        &[(
            "t:main",
            "return { main = function(a, b, c, d) return { a = a, b = b, c = c, n = select('#', a, b, c, d) } end }",
        )],
    );
    let v =
        h.run_json("t:main", vec![Value::Int(7), s("two"), Value::Array(vec![Value::Bool(true), Value::Float(1.5)])]);
    assert_eq!(v, serde_json::json!({ "a": 7, "b": "two", "c": [true, 1.5], "n": 4 }));
}

#[test]
fn spawn_errors_are_values() {
    lua_ok(
        1,
        r#"
return { main = function()
    local p, err = process.spawn("t:nope", HOST)
    eq(p, nil, "unknown entry pid"); eq(err.kind, errors.NOT_FOUND, "unknown entry kind")
    p, err = process.spawn("t:main", "t:nohost")
    eq(p, nil, "unknown host pid"); eq(err.kind, errors.NOT_FOUND, "unknown host kind")
    p, err = process.spawn(nil, HOST)
    eq(p, nil, "nil id pid"); eq(err.kind, errors.INVALID, "nil id kind")
    p, err = process.spawn("t:main", HOST, function() end)
    eq(p, nil, "function arg pid"); eq(err.kind, errors.INVALID, "function arg kind")
    assert(#tostring(err) > 0, "error message is empty")
    return "ok"
end }
"#,
    );
}

/// Receiver: expects `n` messages from each of `senders` senders, each sender
/// numbering its messages 1..n; fails on the first out-of-order one.
const FIFO_RECEIVER: &str = r#"
return { main = function(senders, n)
    local inbox = process.inbox()
    local last, done, total = {}, 0, 0
    while done < senders do
        local m = recv(inbox, 15000)
        local from, seq = m:from(), m:payload():data()
        local prev = last[from] or 0
        if seq ~= prev + 1 then
            error(string.format("from %s: got %s after %s", from, tostring(seq), tostring(prev)))
        end
        last[from] = seq
        total = total + 1
        if seq == n then done = done + 1 end
    end
    return total
end }
"#;

/// Sender: sends 1..n to every receiver, interleaved, then returns.
const FIFO_SENDER: &str = r#"
return { main = function(receivers, n)
    for i = 1, n do
        for _, r in ipairs(receivers) do
            local ok, err = process.send(r, "seq", i)
            assert(ok, tostring(err))
        end
    end
    return n
end }
"#;

#[test]
fn fifo_per_sender_on_one_worker() {
    // Ordering alone: a long time slice keeps preemption out (see
    // `fifo_survives_preemption_of_the_receiver` for that).
    let mut opts = options(1);
    opts.time_slice = std::time::Duration::from_millis(500);
    let h = start_with(
        opts,
        &[
            ("t:recv", FIFO_RECEIVER),
            ("t:send", FIFO_SENDER),
            (
                "t:main",
                r#"
return { main = function()
    local r = process.spawn_monitored("t:recv", HOST, 3, 2000)
    for i = 1, 3 do assert(process.spawn("t:send", HOST, { r }, 2000)) end
    local ev = event(process.event.EXIT, 15000)
    eq(ev.result.error, nil, "receiver error")
    eq(ev.result.value, 6000, "messages received")
    return "ok"
end }
"#,
            ),
        ],
    );
    h.run_ok("t:main", vec![]);
}

/// Cross-worker ordering alone: a long time slice keeps preemption out of
/// the picture (see the `_under_load` variant for that).
#[test]
fn fifo_per_sender_across_workers() {
    fifo_across_workers(300, std::time::Duration::from_millis(500));
}

/// Same as above with a backlog large enough that receivers run past their
/// time slice and get preempted while messages keep arriving.
#[test]
fn fifo_per_sender_across_workers_under_load() {
    fifo_across_workers(1500, std::time::Duration::from_millis(5));
}

/// One worker, a 100 µs time slice and a long stream: the receiver is
/// preempted many times in the middle of receiving while the sender keeps
/// delivering into the same inbox.
#[test]
fn fifo_survives_preemption_of_the_receiver() {
    let mut opts = options(1);
    opts.time_slice = std::time::Duration::from_micros(100);
    let h = start_with(
        opts,
        &[
            (
                "t:recv",
                r#"
return { main = function(n)
    local inbox = process.inbox()
    for i = 1, n do
        local v = inbox:receive():payload():data()
        if v ~= i then error("expected " .. i .. ", got " .. tostring(v)) end
    end
    return n
end }
"#,
            ),
            ("t:send", "return { main = function(to, n) for i = 1, n do process.send(to, 'x', i) end end }"),
        ],
    );
    let n = 300_000;
    let (rp, rx) = h.node().spawn_watched("t:recv", HOST, vec![Value::Int(n)]).unwrap();
    h.node().spawn("t:send", HOST, vec![s(&rp), Value::Int(n)]).unwrap();
    let r = rx.recv_timeout(RESULT_TIMEOUT).expect("receiver hung");
    assert_eq!(r.as_ref().ok().map(to_json), Some(serde_json::json!(n)), "{}", show(&r));
}

fn fifo_across_workers(n: i64, time_slice: std::time::Duration) {
    const SENDERS: usize = 6;
    const RECEIVERS: usize = 6;
    let mut opts = options(2);
    opts.time_slice = time_slice;
    let h = start_with(opts, &[("t:recv", FIFO_RECEIVER), ("t:send", FIFO_SENDER)]);
    // Processes spawned from outside go to the least loaded worker, so they
    // alternate between the two workers.
    // Waiting for each one to be live makes the next placement see the load.
    let mut receivers = Vec::new();
    for i in 0..RECEIVERS {
        receivers
            .push(h.node().spawn_watched("t:recv", HOST, vec![Value::Int(SENDERS as i64), Value::Int(n)]).unwrap());
        wait_for("receiver to start", RESULT_TIMEOUT, || h.node().live() == i + 1);
    }
    let rpids: Vec<String> = receivers.iter().map(|(p, _)| p.clone()).collect();
    let workers = h.node().workers() as u64;
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let args = vec![Value::Array(rpids.iter().map(|p| s(p)).collect()), Value::Int(n)];
        senders.push(h.node().spawn_watched("t:send", HOST, args).unwrap());
        // spread the senders too (they may finish quickly; then load is equal anyway)
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let cross = senders
        .iter()
        .flat_map(|(sp, _)| rpids.iter().map(move |rp| (pid_counter(sp) % workers, pid_counter(rp) % workers)))
        .filter(|(a, b)| a != b)
        .count();
    assert!(cross > 0, "placement put every sender on its receivers' worker; the test would not cross workers");
    for (pid, rx) in senders {
        let r = rx.recv_timeout(RESULT_TIMEOUT).unwrap_or_else(|_| panic!("sender {pid} hung"));
        assert!(r.is_ok(), "sender {pid}: {}", show(&r));
    }
    for (pid, rx) in receivers {
        let r = rx.recv_timeout(RESULT_TIMEOUT).unwrap_or_else(|_| panic!("receiver {pid} hung"));
        assert_eq!(
            r.as_ref().ok().map(to_json),
            Some(serde_json::json!(SENDERS as i64 * n)),
            "receiver {pid}: {}",
            show(&r)
        );
    }
}

/// The payload a receiver got must not change when the sender mutates its
/// table after `send`; several payload values arrive as an array.
const COPY_MAIN: &str = r#"
return { main = function()
    local r = process.spawn("t:collect", HOST, process.pid())
    local t = { x = 1, list = { 1, 2 } }
    assert(process.send(r, "data", t))
    t.x = 2
    t.list[1] = 99
    t.extra = true
    assert(process.send(r, "data", t))
    assert(process.send(r, "data", 1, "two", { three = 3 }))
    assert(process.send(r, "data"))
    assert(process.send(r, "done"))
    local got = msg(10000):payload():data()
    eq(got[1].x, 1, "first copy x"); eq(got[1].list[1], 1, "first copy list[1]"); eq(got[1].extra, nil, "first copy extra")
    eq(got[2].x, 2, "second copy x"); eq(got[2].list[1], 99, "second copy list[1]"); eq(got[2].extra, true, "second copy extra")
    local multi = got[3]
    eq(type(multi), "table", "multi payload type")
    eq(#multi, 3, "multi payload length"); eq(multi[1], 1, "multi[1]"); eq(multi[2], "two", "multi[2]"); eq(multi[3].three, 3, "multi[3]")
    eq(got.none_is_nil, true, "no payload arrives as nil")
    eq(t.x, 2, "the receiver's mutation reached the sender's table")
    return "ok"
end }
"#;

const COPY_COLLECT: &str = r#"
local function snapshot(v)
    if type(v) ~= "table" then return v end
    local out = {}
    for k, x in pairs(v) do out[k] = snapshot(x) end
    return out
end
return { main = function(parent)
    local inbox = process.inbox()
    local got = {}
    while true do
        local m = recv(inbox, 10000)
        if m:topic() == "done" then break end
        local d = m:payload():data()
        if #got == 3 then got.none_is_nil = (d == nil) else got[#got + 1] = snapshot(d) end
        -- the receiver mutating its copy must not reach the sender either
        if type(d) == "table" then d.x = "mutated by receiver"; d[1] = "mutated by receiver" end
    end
    assert(process.send(parent, "got", got))
end }
"#;

#[test]
fn payloads_are_copied_on_one_worker() {
    let h = start(1, &[("t:main", COPY_MAIN), ("t:collect", COPY_COLLECT)]);
    h.run_ok("t:main", vec![]);
}

#[test]
fn payloads_are_copied_across_workers() {
    // The collector is spawned from outside (least-loaded placement) so that
    // it lands on the other worker than the sender; its pid is handed over.
    let h = start(
        2,
        &[
            ("t:collect", COPY_COLLECT),
            (
                "t:main2",
                r#"
return { main = function()
    local r = msg(10000):payload():data()
    local t = { x = 1, list = { 1, 2 } }
    assert(process.send(r, "data", t))
    t.x = 2; t.list[1] = 99; t.extra = true
    assert(process.send(r, "data", t))
    assert(process.send(r, "data", 1, "two", { three = 3 }))
    assert(process.send(r, "data"))
    assert(process.send(r, "done"))
    local got = msg(10000):payload():data()
    eq(got[1].x, 1, "first copy x"); eq(got[1].list[1], 1, "first copy list[1]"); eq(got[1].extra, nil, "first copy extra")
    eq(got[2].x, 2, "second copy x"); eq(got[2].list[1], 99, "second copy list[1]")
    eq(#got[3], 3, "multi payload length"); eq(got[3][2], "two", "multi[2]"); eq(got[3][3].three, 3, "multi[3]")
    eq(got.none_is_nil, true, "no payload arrives as nil")
    eq(t.x, 2, "the receiver's mutation reached the sender's table")
    return "ok"
end }
"#,
            ),
        ],
    );
    let (main_pid, rx) = h.node().spawn_watched("t:main2", HOST, vec![]).unwrap();
    wait_for("main2 to start", RESULT_TIMEOUT, || h.node().live() == 1);
    let collector = h.node().spawn("t:collect", HOST, vec![s(&main_pid)]).unwrap();
    assert_ne!(pid_counter(&main_pid) % 2, pid_counter(&collector) % 2, "expected the two on different workers");
    h.node().send(&main_pid, "collector", s(&collector)).unwrap();
    let r = rx.recv_timeout(RESULT_TIMEOUT).expect("main2 hung");
    assert_eq!(r.as_ref().ok().and_then(|v| v.as_str()), Some("ok"), "{}", show(&r));
}

#[test]
fn message_accessors_and_sender_pid() {
    lua_ok(
        1,
        r#"
return { main = function()
    local child = process.spawn("t:echo", HOST)
    assert(process.send(child, "ping", { n = 1 }))
    local m = msg()
    eq(m:topic(), "pong", "topic"); eq(m:from(), child, "from"); eq(m:payload():data().n, 1, "payload")
    eq(m:payload():data().sender, process.pid(), "child saw our pid as sender")
    return "ok"
end }
"#,
    );
}

#[test]
fn send_to_dead_pid_is_not_an_error() {
    lua_ok(
        1,
        r#"
return { main = function()
    local p = process.spawn_monitored("t:quick", HOST, 1)
    local ev = event(process.event.EXIT)
    eq(ev.from, p, "exit from")
    local ok, err = process.send(p, "hello", 1)
    eq(ok, true, "send to dead pid"); eq(err, nil, "send to dead pid error")
    return "ok"
end }
"#,
    );
}

#[test]
fn send_errors() {
    lua_ok(
        1,
        r#"
return { main = function()
    local ok, err = process.send("no-such-name", "t", 1)
    eq(ok, nil, "unknown name result"); eq(err.kind, errors.NOT_FOUND, "unknown name kind")
    assert(#tostring(err) > 0, "message")
    eq(tostring(err), err.message, "tostring(err) is the message")
    ok, err = process.send(process.pid(), "@reserved", 1)
    eq(ok, nil, "@ topic result"); eq(err.kind, errors.INVALID, "@ topic kind")
    ok, err = process.send("{not a pid", "t", 1)
    eq(ok, nil, "malformed pid result"); eq(err.kind, errors.INVALID, "malformed pid kind")
    ok, err = process.send(process.pid(), "t", function() end)
    eq(ok, nil, "function payload result"); eq(err.kind, errors.INVALID, "function payload kind")
    ok, err = process.send(process.pid(), "t", channel.new())
    eq(ok, nil, "channel payload result"); eq(err.kind, errors.INVALID, "channel payload kind")
    ok, err = process.send(nil, "t")
    eq(ok, nil, "nil dest result"); eq(err.kind, errors.INVALID, "nil dest kind")
    -- nothing of the above was delivered
    quiet(process.inbox(), 30)
    return "ok"
end }
"#,
    );
}

#[test]
fn send_with_an_empty_topic_is_invalid() {
    lua_ok(
        1,
        r#"
return { main = function()
    local ok, err = process.send(process.pid(), "", 1)
    eq(ok, nil, "empty topic result"); eq(err and err.kind, errors.INVALID, "empty topic kind")
    quiet(process.inbox(), 30)
    return "ok"
end }
"#,
    );
}

#[test]
fn listen_routes_one_topic_and_the_inbox_gets_the_rest() {
    lua_ok(
        1,
        r#"
return { main = function()
    local me = process.pid()
    local inbox = process.inbox()
    local a = process.listen("a")
    local b = process.listen("b", { message = true })
    assert(process.send(me, "a", 1))
    assert(process.send(me, "other", 2))
    assert(process.send(me, "b", 3))
    assert(process.send(me, "a", 4))
    eq(recv(a), 1, "first a"); eq(recv(a), 4, "second a")
    local mb = recv(b)
    eq(mb:topic(), "b", "listen{message=true} topic"); eq(mb:payload():data(), 3, "b payload"); eq(mb:from(), me, "b from")
    local mi = recv(inbox)
    eq(mi:topic(), "other", "inbox topic"); eq(mi:payload():data(), 2, "inbox payload")
    quiet(inbox, 20)
    -- after unlisten the topic falls back to the inbox
    process.unlisten(a)
    assert(process.send(me, "a", 5))
    local m = recv(inbox)
    eq(m:topic(), "a", "after unlisten topic"); eq(m:payload():data(), 5, "after unlisten payload")
    -- bad topics
    local ok = pcall(process.listen, "@x")
    local ch, err = nil, nil
    if ok then ch, err = process.listen("@x") end
    assert(not ok or ch == nil, "listen('@x') must fail")
    return "ok"
end }
"#,
    );
}

#[test]
fn messages_sent_before_a_subscription_are_not_lost() {
    lua_ok(
        1,
        r#"
return { main = function()
    local me = process.pid()
    assert(process.send(me, "late", "early bird"))
    local late = process.listen("late")
    local inbox = process.inbox()
    local r = channel.select{ late:case_receive(), inbox:case_receive(), time.after(2000):case_receive() }
    assert(r.channel == late or r.channel == inbox, "message sent before listen() was lost")
    local v = r.value
    if r.channel == inbox then v = v:payload():data() end
    eq(v, "early bird", "payload")
    return "ok"
end }
"#,
    );
}

#[test]
fn sleep_orders_wakeups_and_suspends_only_the_caller() {
    lua_ok(
        1,
        r#"
return { main = function()
    local me = process.pid()
    local t0 = time.monotonic()
    for _, d in ipairs({ 90, 30, 60, 0 }) do
        assert(process.spawn("t:sleeper", HOST, me, d))
    end
    local order = {}
    for i = 1, 4 do order[i] = msg():payload():data() end
    eq(table.concat(order, ","), "0,30,60,90", "wake-up order")
    local elapsed = time.monotonic() - t0
    -- the sleeps overlap: sleeping suspended only each sleeper
    assert(elapsed >= 85, "woke too early: " .. elapsed)
    assert(elapsed < 1500, "sleeps did not overlap: " .. elapsed)
    return "ok"
end }
"#,
    );
}
