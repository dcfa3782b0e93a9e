-- Prints this node's gossip address once, then the members it sees every
-- `interval` (a service input; default one second).
local time = require("time")
local system = require("system")

local function main(interval)
    interval = interval or "1s"
    local events = process.events()
    print("addr " .. system.node.addr())
    while true do
        local members = system.cluster.members()
        local names = {}
        for _, m in ipairs(members) do
            names[#names + 1] = m.name
        end
        print("size " .. system.cluster.size() .. " " .. table.concat(names, ","))
        local r = channel.select{ events:case_receive(), time.after(interval):case_receive() }
        if r.channel == events and r.value.kind == process.event.CANCEL then
            return "stopped"
        end
    end
end

return { main = main }
