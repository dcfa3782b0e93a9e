-- Supervises a pool of linked workers. With trap_links the failure of a
-- worker arrives as a LINK_DOWN event instead of killing the pool; the pool
-- then starts a replacement under the same name.
local function first_line(s)
    return (tostring(s):match("^[^\n]*"))
end

local function main(size)
    size = size or 3
    process.set_options({ trap_links = true })
    local events = process.events()
    local workers = {}                       -- pid -> name
    local started = 0

    local function start(name)
        local pid, err = process.spawn_linked("app:worker", "app:processes", name)
        if not pid then error("cannot start " .. name .. ": " .. tostring(err)) end
        workers[pid] = name
        started = started + 1
        print(string.format("pool: started %s as %s", name, pid))
    end

    for i = 1, size do start("w" .. i) end

    while true do
        local ev = events:receive()
        if ev.kind == process.event.LINK_DOWN and workers[ev.from] then
            local name = workers[ev.from]
            workers[ev.from] = nil
            print(string.format("pool: %s (%s) failed: %s", name, ev.from, first_line(ev.result.error)))
            start(name)
        elseif ev.kind == process.event.CANCEL then
            print(string.format("pool: stopping, %d workers started in total", started))
            for pid in pairs(workers) do process.cancel(pid, "pool stopping") end
            return started
        end
    end
end

return { main = main }
