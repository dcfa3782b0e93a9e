-- Starts the history clients of this node once it sees a Raft leader (so
-- the first calls do not all wait out "no leader"), and reports:
--   HIST {"ev":"boot", "node", "group"}   this incarnation of the node; every
--                                        client id starts with `group`
--   HIST {"ev":"exit", "client", "error"} a client ended (it should not)
-- The settings come from the service's input (see _index.yaml).
local time = require("time")
local system = require("system")
local json = require("json")

local function now()
    return time.now():unix_nano()
end

local function emit(t)
    t.t = now()
    print("HIST " .. json.encode(t))
end

-- Unix milliseconds in base 36: unique per incarnation of a node (restarts
-- are seconds apart), and short enough to read in a dump.
local function base36(n)
    local digits, out = "0123456789abcdefghijklmnopqrstuvwxyz", ""
    repeat
        local d = n % 36
        out = digits:sub(d + 1, d + 1) .. out
        n = n // 36
    until n == 0
    return out
end

local function main(cfg)
    local events = process.events()
    while system.cluster.leader() == "" do
        local r = channel.select{ events:case_receive(), time.after(100):case_receive() }
        if r.channel == events and r.value.kind == process.event.CANCEL then
            return "stopped"
        end
    end
    local node = system.node.id()
    local group = node .. "." .. base36(now() // 1000000)
    emit({ ev = "boot", node = node, group = group })
    local clients = {}
    for i = 1, cfg.clients do
        local id = group .. ".c" .. i
        local pid = assert(process.spawn_monitored("app:client", "app:processes", id, node, group, cfg))
        clients[pid] = id
    end
    while true do
        local ev = events:receive()
        if ev.kind == process.event.CANCEL then
            for pid in pairs(clients) do
                process.cancel(pid, "stopping")
            end
            return "stopped"
        elseif ev.kind == process.event.EXIT and clients[ev.from] then
            emit({ ev = "exit", client = clients[ev.from], error = ev.result and ev.result.error or "" })
        end
    end
end

return { main = main }
