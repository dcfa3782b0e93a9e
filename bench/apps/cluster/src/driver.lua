-- The near side of the messaging benchmarks: runs against a peer pid on
-- another node (service inputs: peer, warm-up trips, timed trips, messages
-- per throughput run, ack window, trials) and prints one line per figure
-- for the bench to parse, then "done".
--
--   rtt <trial> <n> <p50_us> <p99_us> <mean_us> <min_us> <max_us>
--   oneway <trial> <window> <n> <counted> <seconds> <send_seconds>
--
-- Every round trip is timed on its own with time.monotonic() (milliseconds
-- as a float, sub-microsecond resolution), so the percentiles are of real
-- trips, not of an average. One-way time runs from just before the first
-- send until the peer's count comes back after the last message, which
-- adds one trip (~tens of µs) to runs of a second or more.
local time = require("time")
local system = require("system")

local inbox

-- Next message, which must have this topic: anything else means the
-- benchmark is not measuring what it claims.
local function recv(topic)
    local msg = inbox:receive()
    if msg:topic() ~= topic then
        error("got topic " .. msg:topic() .. " while waiting for " .. topic)
    end
    return msg:payload():data()
end

local function rtt(peer, trial, warmup, n)
    for i = 1, warmup do
        process.send(peer, "ping", i)
        recv("pong")
    end
    local samples, sum = {}, 0
    local now = time.monotonic
    for i = 1, n do
        local t = now()
        process.send(peer, "ping", i)
        local got = recv("pong")
        local d = now() - t
        if got ~= i then error("pong " .. tostring(got) .. " where " .. i .. " was due") end
        samples[i] = d
        sum = sum + d
    end
    table.sort(samples)
    local function q(p) return samples[math.max(1, math.ceil(n * p))] * 1000 end
    print(string.format("rtt %d %d %.2f %.2f %.2f %.2f %.2f", trial, n, q(0.5), q(0.99), sum / n * 1000,
        samples[1] * 1000, samples[n] * 1000))
end

-- `window` > 0: the peer acks every `window` messages and at most two
-- windows are in flight, so the mesh queue never fills. 0: send all at once.
local function oneway(peer, trial, n, window)
    process.send(peer, "start", window)
    -- Skip late answers to a repeated "end" of the previous run.
    repeat
        local msg = inbox:receive()
    until msg:topic() == "started"
    local t0 = time.monotonic()
    if window > 0 then
        local acked = 0
        for i = 1, n do
            process.send(peer, "m", i)
            if i % window == 0 and i - acked >= 2 * window then
                acked = recv("ack")
            end
        end
    else
        for i = 1, n do
            process.send(peer, "m", i)
        end
    end
    local sent = time.monotonic()
    -- Acks still in flight come before the count (FIFO per pair). A blast
    -- that overflowed the mesh queue may have lost "end" too, so it is sent
    -- again after a quiet second; losses are then reported, not hidden.
    process.send(peer, "end", true)
    local counted
    repeat
        local r = channel.select{ inbox:case_receive(), time.after("1s"):case_receive() }
        if r.channel ~= inbox then
            process.send(peer, "end", true)
        elseif r.value:topic() == "counted" then
            counted = r.value:payload():data()
        end
    until counted
    local t1 = time.monotonic()
    print(string.format("oneway %d %d %d %d %.6f %.6f", trial, window, n, counted, (t1 - t0) / 1000,
        (sent - t0) / 1000))
end

local function main(peer, warmup, trips, msgs, window, trials)
    inbox = process.inbox()
    -- Traffic to a node gossip does not list yet is dropped: wait for it.
    local node = peer:match("^{([^@]+)@")
    local function listed()
        for _, m in ipairs(system.cluster.members() or {}) do
            if m.name == node and m.state == "alive" then return true end
        end
    end
    while not listed() do time.sleep("20ms") end
    for trial = 1, trials do
        rtt(peer, trial, warmup, trips)
    end
    for trial = 1, trials do
        oneway(peer, trial, msgs, 0)
        if window > 0 then oneway(peer, trial, msgs, window) end
    end
    print("done")
    return "done"
end

return { main = main }
