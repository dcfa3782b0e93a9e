-- The Raft benchmarks' client side: writes to the kv.raft store `app:kv`
-- and prints one line per figure for the bench to parse, then "done".
-- Service inputs: the voter count to wait for, a mode, then per mode:
--
--   "write", warm-up, n, batch n, writers, trials
--       kvseq <trial> <n> <p50_us> <p99_us> <mean_us>: one process, one
--       write at a time, each timed with time.monotonic(); then
--       kvbatch <trial> <n> <writers> <seconds>: `writers` processes share
--       the batch writes; concurrent writes travel and commit together,
--       which is what batching measures
--       then lockcycle <trial> <n> <p50_us> <p99_us>: system.lock acquire +
--       release of one name, n times, each cycle timed
--   "loop" → w <i> after every committed write, until stopped (failover:
--       the bench kills the leader and reads the gap)
local time = require("time")
local store = require("store")
local system = require("system")

local function open(voters)
    local s = assert(store.get("app:kv"))
    while tonumber((system.raft.stats() or {}).voters or 0) < voters do time.sleep("50ms") end
    -- The first write waits for a leader; retry until one takes it.
    while not s:set("ready", true) do time.sleep("50ms") end
    return s
end

local function seq(s, warmup, n, trials)
    for i = 1, warmup do
        local ok, err = s:set("w", i)
        if not ok then error("warm-up write failed: " .. tostring(err)) end
    end
    local now = time.monotonic
    for trial = 1, trials do
        local samples, sum = {}, 0
        for i = 1, n do
            local t = now()
            local ok, err = s:set("k" .. (i % 64), i)
            if not ok then error("write failed: " .. tostring(err)) end
            local d = now() - t
            samples[i] = d
            sum = sum + d
        end
        table.sort(samples)
        local function q(p) return samples[math.max(1, math.ceil(n * p))] * 1000 end
        print(string.format("kvseq %d %d %.1f %.1f %.1f", trial, n, q(0.5), q(0.99), sum / n * 1000))
    end
end

local function lock_cycles(n, trials)
    local now = time.monotonic
    for trial = 1, trials do
        local samples = {}
        for i = 1, n do
            local t = now()
            local ok, err = system.lock.acquire("bench")
            if not ok then error("acquire failed: " .. tostring(err)) end
            local released, rerr = system.lock.release("bench")
            if not released then error("release failed: " .. tostring(rerr)) end
            samples[i] = now() - t
        end
        table.sort(samples)
        local function q(p) return samples[math.max(1, math.ceil(n * p))] * 1000 end
        print(string.format("lockcycle %d %d %.1f %.1f", trial, n, q(0.5), q(0.99)))
    end
end

local function batch(n, writers, trials)
    local inbox = process.inbox()
    local per = n // writers
    for trial = 1, trials do
        local t0 = time.monotonic()
        for w = 1, writers do
            process.spawn("app:kvworker", "app:processes", process.pid(), w, per)
        end
        for _ = 1, writers do
            local msg = inbox:receive()
            if msg:topic() ~= "done" then error("worker: " .. tostring(msg:payload():data())) end
        end
        local t1 = time.monotonic()
        print(string.format("kvbatch %d %d %d %.6f", trial, per * writers, writers, (t1 - t0) / 1000))
    end
end

local function loop(s)
    local i = 0
    while true do
        if s:set("loop", i) then
            i = i + 1
            print("w " .. i)
        end
    end
end

local function main(voters, mode, warmup, n, batch_n, writers, trials)
    local s = open(voters)
    if mode == "write" then
        seq(s, warmup, n, trials)
        batch(batch_n, writers, trials)
        lock_cycles(n // 5, trials)
    elseif mode == "loop" then
        loop(s)
    else
        error("unknown mode " .. tostring(mode))
    end
    print("done")
    return "done"
end

-- One concurrent writer of the batch run: `n` writes to its own keys.
local function worker(parent, w, n)
    local s = assert(store.get("app:kv"))
    for i = 1, n do
        local ok, err = s:set("b" .. w .. "/" .. (i % 16), i)
        if not ok then
            process.send(parent, "failed", tostring(err))
            return
        end
    end
    process.send(parent, "done", w)
end

return { main = main, worker = worker }
