-- Prints one line per 100 ms with this node's Raft view:
--   raft <role> <leader or -> <term> <voters> <standbys> <last applied index>
-- or "raft unavailable" where Raft does not run.
local time = require("time")
local system = require("system")

local function main()
    local events = process.events()
    while true do
        local role, err = system.raft.role()
        if err then
            print("raft unavailable")
        else
            local stats = system.raft.stats()
            local leader = system.cluster.leader()
            print(string.format("raft %s %s %d %s %s %s", role, leader ~= "" and leader or "-", system.raft.term(),
                stats.voters, stats.standbys, stats.last_applied))
        end
        local r = channel.select{ events:case_receive(), time.after("100ms"):case_receive() }
        if r.channel == events and r.value.kind == process.event.CANCEL then
            return "stopped"
        end
    end
end

return { main = main }
