-- A chat room over process groups: each node's member joins "lobby",
-- watches who comes and goes, and says hello to the room every second.
local pg = require("pg")
local time = require("time")
local system = require("system")

local function main()
    local me = system.node.id()
    local room = assert(pg.open("app:chat"))
    -- The snapshot and the subscription are taken together: no join or
    -- leave can fall between them.
    local sub, members = room:monitor("lobby")
    print(("%s: %d already in the lobby"):format(me, #members))
    room:join("lobby")
    local says = process.listen("say")
    local n = 0
    while true do
        local r = channel.select{
            sub:channel():case_receive(),
            says:case_receive(),
            time.after("1s"):case_receive(),
        }
        if r.channel == sub:channel() then
            local ev = r.value
            local verb = ev.kind == "member.joined" and "joined" or "left"
            for _, pid in ipairs(ev.data.PIDs) do print(("%s: %s %s"):format(me, pid, verb)) end
        elseif r.channel == says then
            local msg = r.value
            if msg.from ~= me then print(("%s: %s says %s"):format(me, msg.from, msg.text)) end
        else
            n = n + 1
            room:broadcast("lobby", "say", { from = me, text = "hello #" .. n })
        end
    end
end

return { main = main }
