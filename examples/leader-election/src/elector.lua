-- Leader election with system.lock: every node runs this service; the one
-- holding the lock "leader" does the work, the others wait for the lock.
--
-- The fencing token that comes with the lock only grows: a resource that
-- remembers the largest token it has seen can refuse a stale leader.
local system = require("system")
local time = require("time")

local function lead(token, events)
    print(("leader %s (token %d)"):format(system.node.id(), token))
    local n = 0
    while true do
        local r = channel.select{ events:case_receive(), time.after("1s"):case_receive() }
        if r.channel == events and r.value.kind == process.event.CANCEL then
            -- The lock was lost (no contact with a Raft majority), or the
            -- node is stopping: stop working at once.
            print("stepping down: " .. tostring(r.value.reason))
            system.lock.release("leader")
            return r.value.reason:sub(1, 5) == "lock "
        end
        n = n + 1
        print(("work %d by %s (token %d)"):format(n, system.node.id(), token))
    end
end

local function main()
    local events = process.events()
    local role
    while true do
        -- Say where this node stands in the Raft core while it waits.
        local now = system.raft.role()
        if now ~= nil and now ~= role and now ~= "leader" then
            print(("%s: raft %s, waiting for the lock"):format(system.node.id(), now))
        end
        role = now
        local ok, err, token = system.lock.acquire("leader", { wait = "2s" })
        if ok then
            if not lead(token, events) then return "stopped" end
        elseif err and err.kind ~= errors.ALREADY_EXISTS then
            -- No Raft leader yet (the cluster is forming): try again shortly.
            time.sleep("500ms")
        end
    end
end

return { main = main }
