local time = require("time")
local system = require("system")

local function main(rounds)
    rounds = rounds or 1000
    -- Monitor pong so that its result (the number of pings it answered)
    -- comes back to us as an EXIT event.
    local pong, err = process.spawn_monitored("app:pong", "app:processes")
    if not pong then error("cannot start pong: " .. tostring(err)) end
    print(string.format("ping %s -> pong %s: %d round trips", process.pid(), pong, rounds))

    local replies = process.listen("pong")     -- pong payloads only
    local t0 = time.monotonic()
    for i = 1, rounds do
        process.send(pong, "ping", i)
        local n = replies:receive()
        if n ~= i then error(string.format("expected pong %d, got %s", i, tostring(n))) end
    end
    local ms = time.monotonic() - t0

    process.send(pong, "stop")
    local events = process.events()
    local ev = events:receive()
    while ev.kind ~= process.event.EXIT do ev = events:receive() end

    print(string.format("done: %d round trips in %.1f ms (%.0f per second)", rounds, ms, rounds / (ms / 1000)))
    print(string.format("pong answered %d pings", ev.result.value))
    system.exit(0)
end

return { main = main }
