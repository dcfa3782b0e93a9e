-- Prints "size N" every 100 ms and, once, the node's own gossip address, so
-- the cluster test can follow membership from outside.
local time = require("time")
local system = require("system")

local function main()
    local events = process.events()
    print("addr " .. system.node.addr())
    while true do
        local members = system.cluster.members()
        local names = {}
        for _, m in ipairs(members) do
            names[#names + 1] = m.name
        end
        print("size " .. system.cluster.size() .. " " .. table.concat(names, ","))
        local r = channel.select{ events:case_receive(), time.after("100ms"):case_receive() }
        if r.channel == events and r.value.kind == process.event.CANCEL then
            return "stopped"
        end
    end
end

return { main = main }
