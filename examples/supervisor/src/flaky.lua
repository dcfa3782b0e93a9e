-- Works for a while, then crashes. Its service entry restarts it with backoff.
local time = require("time")

local function main()
    print("flaky: up as " .. process.pid())
    local events = process.events()
    local crash_at = time.after("300ms")
    while true do
        local r = channel.select{ events:case_receive(), crash_at:case_receive() }
        if r.channel == crash_at then
            error("flaky: simulated crash")
        elseif r.value.kind == process.event.CANCEL then
            -- the node is shutting down
            print("flaky: cancelled, bye")
            return "cancelled"
        end
    end
end

return { main = main }
