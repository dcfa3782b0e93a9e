-- Keeps a per-node counter in the kv.raft store `app:kv`:
--   kv resumed <n>   the committed value found at start (0 when absent)
--   kv wrote <n>     a write of n committed
--   kv error <err>   a read or write that did not succeed
local store = require("store")
local time = require("time")
local system = require("system")

local function pause(events)
    local r = channel.select{ events:case_receive(), time.after("100ms"):case_receive() }
    return r.channel == events and r.value.kind == process.event.CANCEL
end

local function main()
    local events = process.events()
    local s = assert(store.get("app:kv"))
    local key = "seq/" .. system.node.id()
    local n
    while n == nil do
        local v, err = s:get(key)
        if v ~= nil then
            n = v
        elseif err.kind == "NOT_FOUND" then
            n = 0
        else
            print("kv error " .. tostring(err))
            if pause(events) then return "stopped" end
        end
    end
    print("kv resumed " .. n)
    while true do
        local ok, err = s:set(key, n + 1)
        if ok then
            n = n + 1
            print("kv wrote " .. n)
        else
            print("kv error " .. tostring(err))
        end
        if pause(events) then return "stopped" end
    end
end

return { main = main }
