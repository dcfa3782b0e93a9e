-- The calling side of the mesh tests: drives a peer on another node and
-- prints one line per check that passed ("ok <check>") or failed
-- ("FAIL <check>: <why>").
local time = require("time")
local system = require("system")

local inbox, events

local function fail(check, why)
    print("FAIL " .. check .. ": " .. tostring(why))
    error(check .. " failed")
end

-- Next inbox message with this topic (others are unexpected).
local function recv(check, topic)
    local r = channel.select{ inbox:case_receive(), time.after("5s"):case_receive() }
    if r.channel ~= inbox then fail(check, "no " .. topic .. " message in time") end
    local msg = r.value
    if msg:topic() ~= topic then fail(check, "got topic " .. msg:topic() .. ", wanted " .. topic) end
    return msg:payload():data(), msg:from()
end

-- Next lifecycle event; `wait` bounds how long.
local function event(check, wait)
    local r = channel.select{ events:case_receive(), time.after(wait or "5s"):case_receive() }
    if r.channel ~= events then fail(check, "no event in time") end
    return r.value
end

local function main(peer, count)
    inbox, events = process.inbox(), process.events()
    process.set_options({ trap_links = true })

    -- Traffic for a node gossip does not list yet is dropped, so wait
    -- until the peer's node is a member.
    local node = peer:match("^{([^@]+)@")
    local function listed()
        for _, m in ipairs(system.cluster.members()) do
            if m.name == node then return true end
        end
    end
    while not listed() do time.sleep("20ms") end

    -- FIFO across nodes: every echo comes back, in order.
    for i = 1, count do
        process.send(peer, "seq", i)
    end
    for i = 1, count do
        local n = recv("fifo", "seq")
        if n ~= i then fail("fifo", "got " .. tostring(n) .. " where " .. i .. " was due") end
    end
    print("ok fifo " .. count)

    -- Tables survive the trip.
    process.send(peer, "table", { name = "x", list = { 1, 2, 3 }, nested = { deep = true } })
    local t = recv("table", "table")
    if t.name ~= "x" or #t.list ~= 3 or t.nested.deep ~= true then fail("table", "payload changed") end
    print("ok table")

    -- A pid on a node nobody knows: the monitor fires at once.
    local ghost = "{ghost@app:processes|0x00001}"
    process.monitor(ghost)
    local ev = event("ghost")
    if ev.kind ~= process.event.EXIT or ev.from ~= ghost or ev.result.error ~= "node disconnected" then
        fail("ghost", ev.kind .. " " .. tostring(ev.result and ev.result.error))
    end
    print("ok ghost")

    -- Cancel a remote process; it answers, then its exit reaches our monitor.
    process.send(peer, "spawn", true)
    local child = recv("cancel", "spawned")
    process.monitor(child)
    process.cancel(child, "stop please")
    local reason = recv("cancel", "cancelled")
    if reason ~= "stop please" then fail("cancel", "reason " .. tostring(reason)) end
    ev = event("cancel")
    if ev.kind ~= process.event.EXIT or ev.from ~= child or ev.result.value ~= "cancelled" then
        fail("cancel", "exit event " .. ev.kind)
    end
    print("ok cancel")

    -- Terminate a remote process.
    process.send(peer, "spawn", true)
    child = recv("terminate", "spawned")
    process.monitor(child)
    process.terminate(child)
    ev = event("terminate")
    if ev.kind ~= process.event.EXIT or not tostring(ev.result.error):find("terminated") then
        fail("terminate", ev.kind .. " " .. tostring(ev.result.error))
    end
    print("ok terminate")

    -- Keep a monitored and linked child on the peer's node for the node-down check.
    process.send(peer, "spawn", true)
    local hostage = recv("node down", "spawned")
    process.monitor(hostage)
    process.link(hostage)

    -- A linked remote process that fails: LINK_DOWN with its error.
    process.link(peer)
    process.send(peer, "fail", true)
    ev = event("link")
    if ev.kind ~= process.event.LINK_DOWN or ev.from ~= peer or not tostring(ev.result.error):find("asked to fail") then
        fail("link", ev.kind .. " " .. tostring(ev.result and ev.result.error))
    end
    print("ok link")

    -- The test kills the peer's node now; both the monitor and the link fire.
    print("ready for node down")
    local seen = {}
    for _ = 1, 2 do
        ev = event("node down", "30s")
        if ev.from ~= hostage or ev.result.error ~= "node disconnected" then
            fail("node down", ev.kind .. " from " .. tostring(ev.from) .. ": " .. tostring(ev.result.error))
        end
        seen[ev.kind] = true
    end
    if not (seen[process.event.EXIT] and seen[process.event.LINK_DOWN]) then fail("node down", "missing an event") end
    print("ok node down")
    return "done"
end

return { main = main }
