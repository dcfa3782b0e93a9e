-- On the node whose name ends in "1": takes lock L (retrying until Raft
-- has a leader) and holds it, printing "lock held <token>". Elsewhere:
-- once the holder's name "svc" has resolved (so the holder got there
-- first), tries L every 100 ms, printing "lock busy" or, once it has it,
-- "lock taken <token>". The holder also registers the CONSISTENT name
-- "svc"; the others print "svc <pid>" or "svc -" as their replica
-- resolves it. A holder told its lock is lost prints "lock lost: <reason>"
-- and tries again.
local time = require("time")
local system = require("system")

local function main()
    local events = process.events()
    local holder = system.node.id():sub(-1) == "1"
    local held
    local ready = holder
    while true do
        ready = ready or process.registry.lookup("svc") ~= nil
        if not held and ready then
            local ok, err, token = system.lock.acquire("L")
            if ok then
                held = token
                if holder then
                    local named, nerr = process.registry.register("svc", nil, process.registry.CONSISTENT)
                    if not named then print("svc register failed " .. tostring(nerr)) end
                end
                print((holder and "lock held " or "lock taken ") .. token)
            elseif not holder and ok == false then
                print("lock busy")
            elseif err then
                print("lock error " .. tostring(err))
            end
        end
        if not holder then print("svc " .. (process.registry.lookup("svc") or "-")) end
        local r = channel.select{ events:case_receive(), time.after("100ms"):case_receive() }
        if r.channel == events and r.value.kind == process.event.CANCEL then
            local reason = r.value.reason or ""
            if reason:sub(1, 7) == "lock L " then
                print("lock lost: " .. reason)
                held = nil
            else
                return "stopped"
            end
        end
    end
end

return { main = main }
