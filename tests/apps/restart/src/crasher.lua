local time = require("time")

local function main(name)
    -- time.monotonic(): milliseconds since the node started
    print(string.format("start %s %.1f", name, time.monotonic()))
    error(name .. " crashes on purpose")
end

return { main = main }
