-- Prints the members this node sees with their states, sorted by name, every
-- `interval` (a service input; default 100 ms):
--   members n1=alive,n2=suspect,n3=alive
-- Dead and departed members are not listed by `system.cluster.members()`, so
-- a name that disappears from the line was declared dead (or left). The
-- fault tests read these lines to see a member go suspect, then go.
local time = require("time")
local system = require("system")

local function main(interval)
    interval = interval or "100ms"
    local events = process.events()
    while true do
        local rows = {}
        for _, m in ipairs(system.cluster.members()) do
            rows[#rows + 1] = m.name .. "=" .. m.state
        end
        table.sort(rows)
        print("members " .. table.concat(rows, ","))
        local r = channel.select{ events:case_receive(), time.after(interval):case_receive() }
        if r.channel == events and r.value.kind == process.event.CANCEL then
            return "stopped"
        end
    end
end

return { main = main }
