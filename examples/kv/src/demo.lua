-- The two replicated stores side by side.
--
-- kv.raft ("app:config"): every node adds 10 to a shared counter with a
-- compare-and-set loop, so no increment is lost however the nodes race.
-- kv.crdt ("app:sessions"): every node writes its own session key once a
-- second (with a TTL) and reads all sessions from its local copy.
local store = require("store")
local time = require("time")
local system = require("system")

local function increment(s, key)
    while true do
        local e, err = s:entry(key)
        local new
        if e then
            new, err = s:put(key, e.value + 1, { if_version = e.version })
        elseif err.kind == errors.NOT_FOUND then
            new, err = s:put(key, 1, { only_if_absent = true })
        end
        if new then return new.value end
        if err.kind == errors.UNAVAILABLE then time.sleep("200ms") end
        -- ALREADY_EXISTS / NOT_FOUND: another node got in between; read again
    end
end

local function main()
    local me = system.node.id()
    local config = assert(store.get("app:config"))
    local sessions = assert(store.get("app:sessions"))
    for _ = 1, 10 do increment(config, "counter") end
    print(me .. ": added 10 to the counter")
    local last
    while true do
        sessions:set("node:" .. me, { at = time.now():unix() }, "10s")
        local page = sessions:list({ prefix = "node:" })
        local names = {}
        for _, e in ipairs(page.items) do names[#names + 1] = e.key:sub(6) end
        local counter = config:get("counter")
        local line = ("%s: counter=%s sessions=%s"):format(me, tostring(counter), table.concat(names, ","))
        if line ~= last then
            print(line)
            last = line
        end
        time.sleep("1s")
    end
end

return { main = main }
