-- A pool worker: does a "job" every 150 ms and fails on its 4th job.
-- It is linked to the pool, so its failure reaches the pool as LINK_DOWN.
local time = require("time")

local function main(name)
    local events = process.events()
    local job = 0
    while true do
        local r = channel.select{ events:case_receive(), time.after("150ms"):case_receive() }
        if r.channel == events then
            if r.value.kind == process.event.CANCEL then return name .. " stopped" end
        else
            job = job + 1
            if job == 4 then
                error(string.format("%s: job %d failed (simulated)", name, job))
            end
        end
    end
end

return { main = main }
