-- Prints the members this node counts as up ("view a,b,c", sorted names)
-- each time that set changes, polling every `interval` (a service input).
-- The bench timestamps each line as it arrives, so the poll interval is the
-- granularity of the failure-detection and join figures; printing only on
-- change keeps ten nodes' output cheap enough not to disturb gossip.
local time = require("time")
local system = require("system")

local function main(interval)
    interval = interval or "20ms"
    local last
    while true do
        local up = {}
        for _, m in ipairs(system.cluster.members() or {}) do
            if m.state == "alive" or m.state == "suspect" then
                up[#up + 1] = m.name
            end
        end
        table.sort(up)
        local line = "view " .. table.concat(up, ",")
        if line ~= last then
            print(line)
            last = line
        end
        time.sleep(interval)
    end
end

return { main = main }
