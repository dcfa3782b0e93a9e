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

    -- TTL: gone after it ends.
    check(s:set("t", "short", "300ms") == true, "set with a ttl")
    check(s:get("t") == "short", "a ttl key is there at first")
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

local function main()
    local ok, err = pcall(run)
    print(ok and "store ok" or tostring(err))
    system.exit(ok and 0 or 1)
end

return { main = main }
