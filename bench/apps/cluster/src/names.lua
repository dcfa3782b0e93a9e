-- The names, locks-and-stores-adjacent and process-group benchmarks' Lua
-- side. `main` runs on the Raft leader of a three-node cluster and prints
-- one line per figure, then "done"; `watch` runs on another node.
-- Service input of main: the voter count to wait for, n, trials.
--
--   nreg <trial> <n> <p50_us> <p99_us>     CONSISTENT register, each timed
--   nunreg <trial> <n> <p50_us> <p99_us>   CONSISTENT unregister
--   nstrong <trial> <n> <p50_us> <p99_us>  STRONG register (3 live nodes)
--   nevent <trial> <n> <p50_us> <p99_us>   EVENTUAL register
--   nlookup <scope> <ns_per_lookup>        process.registry.lookup of a bound name
--   kvget <trial> <n> <p50_us> <p99_us>    linearizable kv.raft get
--   pgj <i> <wall_ns>                      just before the i-th join
-- and `watch` prints "pgs <i> <wall_ns>" when the i-th join reaches it.
local time = require("time")
local store = require("store")
local system = require("system")
local pg = require("pg")

local R = process.registry

local function quantiles(samples)
    table.sort(samples)
    local n = #samples
    local function q(p) return samples[math.max(1, math.ceil(n * p))] * 1000 end
    return q(0.5), q(0.99)
end

local function timed(tag, trial, n, fn)
    local now, samples = time.monotonic, {}
    for i = 1, n do
        local t = now()
        fn(i)
        samples[i] = now() - t
    end
    local p50, p99 = quantiles(samples)
    print(string.format("%s %d %d %.1f %.1f", tag, trial, n, p50, p99))
end

local function must(ok, err, what)
    if not ok then error(what .. ": " .. tostring(err)) end
end

local function lookups(scope, name, n)
    local lookup = R.lookup
    local t = time.monotonic()
    for _ = 1, n do lookup(name) end
    local ns = (time.monotonic() - t) * 1e6 / n
    print(string.format("nlookup %s %.1f", scope, ns))
end

-- Joins n times; the watcher on another node answers each join, so one
-- join is in flight at a time.
local function pg_joins(n)
    local g = assert(pg.open("app:bench"))
    while #g:get_members("watchers") == 0 do time.sleep("20ms") end
    local inbox = process.inbox()
    for i = 1, n do
        local t0 = time.now():unix_nano()
        must(g:join("g"))
        print(string.format("pgj %d %d", i, t0))
        local m = inbox:receive()
        if m:topic() ~= "seen" then error("unexpected " .. m:topic()) end
        must(g:leave("g"))
        m = inbox:receive()
        if m:topic() ~= "gone" then error("unexpected " .. m:topic()) end
    end
end

local function main(voters, n, trials)
    while tonumber((system.raft.stats() or {}).voters or 0) < voters do time.sleep("50ms") end
    local s = assert(store.get("app:kv"))
    while not s:set("ready", true) do time.sleep("50ms") end
    -- every node in the gossip view, so STRONG asks all three
    while #system.cluster.members() < voters do time.sleep("50ms") end
    for trial = 1, trials do
        timed("nreg", trial, n, function(i) must(R.register("bn" .. trial .. "-" .. i, nil, R.CONSISTENT)) end)
        timed("nunreg", trial, n, function(i) must(R.unregister("bn" .. trial .. "-" .. i, R.CONSISTENT)) end)
        timed("nstrong", trial, n // 4, function(i) must(R.register("bs" .. trial .. "-" .. i, nil, R.STRONG)) end)
        timed("nevent", trial, n, function(i) must(R.register("be" .. trial .. "-" .. i, nil, R.EVENTUAL)) end)
        timed("kvget", trial, n, function() must(s:get("ready")) end)
    end
    must(R.register("svc-c", nil, R.CONSISTENT))
    must(R.register("svc-e", nil, R.EVENTUAL))
    must(R.register("svc-l", nil, R.LOCAL))
    local lookups_n = n * 200
    lookups("consistent", "svc-c", lookups_n)
    lookups("eventual", "svc-e", lookups_n)
    lookups("local", "svc-l", lookups_n)
    pg_joins(n)
    print("done")
end

local function watch()
    local g = assert(pg.open("app:bench"))
    local sub = g:monitor("g")
    g:join("watchers")
    local ch = sub:channel()
    local i = 0
    while true do
        local ev = ch:receive()
        if ev.kind == "member.joined" then
            i = i + 1
            print(string.format("pgs %d %d", i, time.now():unix_nano()))
            process.send(ev.data.PIDs[1], "seen")
        else
            process.send(ev.data.PIDs[1], "gone")
        end
    end
end

return { main = main, watch = watch }
