-- Walks the kv.raft store API on a one-node cluster and prints
-- "store ok", or "store FAILED: <what>" at the first check that fails.
local store = require("store")
local time = require("time")
local system = require("system")

local function check(cond, what)
    if not cond then error("store FAILED: " .. what, 0) end
end

local function run()
    -- Without the cluster there is no store to open.
    if select(2, system.raft.role()) ~= nil then
        local s, err = store.get("app:kv")
        error("store unavailable: " .. tostring(s == nil and err.kind .. " " .. tostring(err)), 0)
    end
    -- Wait for a leader (the store answers UNAVAILABLE until then).
    for _ = 1, 100 do
        if system.raft.is_leader() then break end
        time.sleep("100ms")
    end
    local s, err = store.get("app:kv")
    check(s ~= nil, "store.get: " .. tostring(err))
    local missing, merr = store.get("app:nope")
    check(missing == nil and merr.kind == "NOT_FOUND", "unknown store is NOT_FOUND")

    local info = s:info()
    check(info.backend == "kv.raft" and info.consistency == "linearizable" and info.conditional_put == true,
        "info of kv.raft")
    check(info.id == "app:kv", "info carries the id")
    local crdt = store.get("app:sessions")
    check(crdt:info().backend == "kv.crdt" and crdt:info().conditional_put == false, "info of kv.crdt")

    check(s:set("a", { n = 1, list = { "x", "y" } }) == true, "set a table")
    local v = s:get("a")
    check(v.n == 1 and v.list[2] == "y", "get returns the table")
    check(s:has("a") == true and s:has("zz") == false, "has")
    local _, gerr = s:get("zz")
    check(gerr.kind == "NOT_FOUND", "get of a missing key is NOT_FOUND")

    -- Namespaces keep stores apart.
    local other = store.get("app:other")
    check(other:has("a") == false, "another store does not see the key")

    -- Conditional puts and versions.
    local e1 = s:put("c", "one", { only_if_absent = true })
    check(e1 and e1.key == "c" and e1.value == "one" and e1.version > 0, "put only_if_absent on a new key")
    local _, perr = s:put("c", "two", { only_if_absent = true })
    check(perr and perr.kind == "ALREADY_EXISTS", "put only_if_absent on an existing key")
    local _, verr = s:put("c", "two", { if_version = e1.version + 1000 })
    check(verr and verr.kind == "ALREADY_EXISTS", "put with another version is ALREADY_EXISTS")
    local _, nerr = s:put("nope", "x", { if_version = 1 })
    check(nerr and nerr.kind == "NOT_FOUND", "put with a version on an absent key is NOT_FOUND")
    local e2 = s:put("c", "two", { if_version = e1.version })
    check(e2 and e2.version > e1.version and s:get("c") == "two", "put with the current version")
    check(s:entry("c").version == e2.version, "entry reports the version")
    local _, both = s:put("c", "x", { only_if_absent = true, if_version = 1 })
    check(both and both.kind == "INVALID", "only_if_absent with if_version is INVALID")

    -- Delete.
    check(s:delete("c") == true and s:delete("c") == false, "delete reports whether the key existed")

    -- TTL: there before it ends (a lifetime no slow machine outruns), gone
    -- after it ends.
    check(s:set("long", "kept", "60s") == true, "set with a long ttl")
    check(s:get("long") == "kept", "a ttl key is there at first")
    check(s:set("t", "short", "300ms") == true, "set with a ttl")
    time.sleep("600ms")
    check(s:has("t") == false, "a ttl key is gone after its lifetime")

    -- Listing in pages.
    for i = 1, 5 do s:set("p/" .. i, i) end
    local page = s:list({ prefix = "p/", limit = 2 })
    check(#page.items == 2 and page.items[1].key == "p/1" and page.has_more == true, "first page")
    local rest = s:list({ prefix = "p/", after = page.cursor, limit = 10 })
    check(#rest.items == 3 and rest.items[3].value == 5 and rest.has_more == false and rest.cursor == nil,
        "second page")

    -- Bad input is INVALID and changes nothing.
    local _, e
    _, e = s:set("", 1)
    check(e.kind == "INVALID", "empty key")
    _, e = s:set("k", nil)
    check(e.kind == "INVALID", "nil value")
    _, e = s:set("k", function() end)
    check(e.kind == "INVALID", "function value")
    _, e = s:set("k", 1, -1)
    check(e.kind == "INVALID", "negative ttl")
    _, e = s:put("k", 1, { if_version = 0 })
    check(e.kind == "INVALID", "version 0")
    _, e = s:list({ limit = 0 })
    check(e.kind == "INVALID", "zero limit")
    check(s:has("k") == false, "nothing was written by bad calls")
end

-- A second process that tries a lock and reports back.
local function contender(parent, name, wait)
    local ok, err, token = system.lock.acquire(name, wait and { wait = wait } or nil)
    process.send(parent, "tried", { ok = ok, kind = err and err.kind, token = token })
    if ok and not wait then
        -- Hold it until told to exit; the exit releases it.
        process.inbox():receive()
    end
end

local function tried(inbox)
    local msg = inbox:receive()
    return msg:payload():data()
end

local function run_locks()
    local lock = system.lock
    local inbox = process.inbox()
    local ok, err, t1 = lock.acquire("L")
    check(ok == true and err == nil and math.type(t1) == "integer", "acquire a free lock: " .. tostring(err))
    local again, aerr = lock.acquire("L")
    check(again == false and aerr.kind == "ALREADY_EXISTS", "a second acquire by the holder is ALREADY_EXISTS")

    -- Another process cannot take it, nor release it.
    process.spawn("app:contender", "app:processes", process.pid(), "L")
    local r = tried(inbox)
    check(r.ok == false and r.kind == "ALREADY_EXISTS", "another process is refused")
    check(lock.release("L") == true, "the holder releases")
    check(lock.release("L") == false, "releasing a lock one does not hold is false")

    -- Fencing tokens only grow.
    local _, _, t2 = lock.acquire("L")
    check(t2 > t1, "the next holder's token is larger: " .. tostring(t1) .. " then " .. tostring(t2))

    -- A waiting acquire gets the lock once it is released.
    process.spawn("app:contender", "app:processes", process.pid(), "L", "5s")
    time.sleep("300ms")
    check(lock.release("L") == true, "release for the waiter")
    r = tried(inbox)
    check(r.ok == true and r.token > t2, "the waiter acquires after the release")

    -- A holder that exits releases its lock.
    local holder = process.spawn("app:contender", "app:processes", process.pid(), "E")
    r = tried(inbox)
    check(r.ok == true, "a child takes E")
    check(lock.acquire("E") == false, "E is held by the child")
    process.send(holder, "exit", true)
    local got
    for _ = 1, 100 do
        got = lock.acquire("E")
        if got then break end
        time.sleep("50ms")
    end
    check(got == true, "E is free once its holder exited")

    -- Bad input.
    local _, e = lock.acquire("")
    check(e and e.kind == "INVALID", "empty lock name")
    _, e = lock.acquire("x", { wait = "soon" })
    check(e and e.kind == "INVALID", "bad wait")
end

-- A child that registers a CONSISTENT name for itself, reports, and
-- waits to be told to exit.
local function named(parent, name)
    local ok, err = process.registry.register(name, nil, process.registry.CONSISTENT)
    process.send(parent, "tried", { ok = ok, kind = err and err.kind })
    if ok then process.inbox():receive() end
end

local function run_names()
    local reg = process.registry
    local C = reg.CONSISTENT
    local inbox = process.inbox()
    check(reg.register("svc", nil, C) == true, "register a CONSISTENT name")
    check(reg.register("svc", nil, C) == true, "registering it again for the same process succeeds")
    local _, lcl = reg.register("svc", nil, reg.LOCAL)
    check(lcl == nil, "a LOCAL name of the same process is allowed")
    reg.unregister("svc", reg.LOCAL)
    check(reg.lookup("svc") == process.pid(), "lookup resolves it")
    process.send("svc", "hello", 1)
    local msg = inbox:receive()
    check(msg:topic() == "hello", "send by the name arrives")
    process.spawn("app:named", "app:processes", process.pid(), "svc")
    local r = inbox:receive():payload():data()
    check(r.ok == nil and r.kind == "ALREADY_EXISTS", "a second register of the name is ALREADY_EXISTS")
    local helper = process.spawn("app:named", "app:processes", process.pid(), "other")
    r = inbox:receive():payload():data()
    check(r.ok == true, "a helper registers other")
    check(reg.unregister("other", C) == false, "unregister of a name held by another process is false")
    local _, shadow = reg.register("other", nil, reg.LOCAL)
    check(shadow and shadow.kind == "ALREADY_EXISTS", "a LOCAL name may not shadow another process's CONSISTENT one")
    process.send(helper, "exit", true)
    check(reg.unregister("svc", C) == true, "unregister")
    check(reg.unregister("svc", C) == false, "unregister of a free name is false")
    local _, lerr = reg.lookup("svc")
    check(lerr and lerr.kind == "NOT_FOUND", "an unregistered name does not resolve")
    -- A named process that exits gives its name back.
    local child = process.spawn("app:named", "app:processes", process.pid(), "worker")
    r = inbox:receive():payload():data()
    check(r.ok == true, "a child registers worker")
    check(reg.lookup("worker") == child, "worker resolves to the child")
    process.send(child, "exit", true)
    local gone
    for _ = 1, 100 do
        if reg.lookup("worker") == nil then gone = true break end
        time.sleep("50ms")
    end
    check(gone, "the name is released when its process exits")
    local _, ierr = reg.register("x", "{elsewhere@app:processes|0x00001}", C)
    check(ierr and ierr.kind == "INVALID", "a process of another node cannot be named from here")
end

local function main()
    local ok, err = pcall(run)
    print(ok and "store ok" or tostring(err))
    if ok then
        ok, err = pcall(run_locks)
        print(ok and "lock ok" or ("lock " .. tostring(err)))
    end
    if ok then
        ok, err = pcall(run_names)
        print(ok and "names ok" or ("names " .. tostring(err)))
    end
    system.exit(ok and 0 or 1)
end

return { main = main, contender = contender, named = named }
