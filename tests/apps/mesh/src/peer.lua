-- The addressed side of the mesh tests. Prints its pid, echoes every
-- message back to its sender (same topic, same payload), and obeys a few
-- commands: "exit" returns, "fail" raises, "spawn" starts a child that
-- waits to be cancelled and reports the pid back.
local function child(reply_to)
    local events = process.events()
    local ev = events:receive()
    if ev.kind == process.event.CANCEL then
        print("child cancelled: " .. tostring(ev.reason))
        process.send(reply_to, "cancelled", ev.reason)
        return "cancelled"
    end
end

local function main()
    print("peer " .. process.pid())
    local inbox = process.inbox()
    while true do
        local msg = inbox:receive()
        local topic, from = msg:topic(), msg:from()
        if topic == "exit" then
            return "bye"
        elseif topic == "fail" then
            error("asked to fail")
        elseif topic == "spawn" then
            local pid = process.spawn("app:waiter", "app:processes", from)
            process.send(from, "spawned", pid)
        else
            process.send(from, topic, msg:payload():data())
        end
    end
end

return { main = main, child = child }
