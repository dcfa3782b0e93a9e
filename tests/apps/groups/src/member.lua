-- One cluster member. On the node "solo" it runs the API walk instead.
--
-- Every member joins group "room" of scope app:chat and every 200 ms:
-- node *1 broadcasts "hello"; each node writes its tick count to the
-- kv.crdt key "tick-<node>" (for the first 150 ticks); each tries to take
-- the EVENTUAL name "boss". It prints a line whenever what it sees changes:
--   members <n>          members of room, cluster-wide
--   hello from <node>    first broadcast from that node
--   boss <pid>|-         what "boss" resolves to; "boss mine" when taken
--   boss revoked: <why>  the CANCEL a losing registration gets
--   crdt <k=v ...>       the tick keys this node's copy holds
-- On node *2 a prober registers and drops the STRONG name "probe" every
-- second and prints "strong ok" or "strong err <message>".
local pg = require("pg")
local store = require("store")
local time = require("time")
local system = require("system")

local WRITES = 150

local function crdt_line(s)
    local page = s:list({ prefix = "tick-" })
    local parts = {}
    for _, e in ipairs(page.items) do parts[#parts + 1] = e.key .. "=" .. tostring(e.value) end
    return "crdt " .. table.concat(parts, " ")
end

local function main()
    local me = system.node.id()
    if me == "solo" then
        process.spawn("app:api", "app:processes", "api")
        process.events():receive()
        return
    end
    if me:sub(-1) == "2" then process.spawn("app:api", "app:processes", "probe") end
    local R = process.registry
    local g = pg.open("app:chat")
    g:join("room")
    local hello = process.listen("hello")
    local events = process.events()
    local s = store.get("app:cache")
    local tick, mine = 0, false
    local seen, last = {}, {}
    local function show(key, line)
        if last[key] ~= line then
            last[key] = line
            print(line)
        end
    end
    while true do
        local r = channel.select{ hello:case_receive(), events:case_receive(), time.after("200ms"):case_receive() }
        if r.channel == hello then
            if not seen[r.value] then
                seen[r.value] = true
                print("hello from " .. r.value)
            end
        elseif r.channel == events then
            if r.value.kind == process.event.CANCEL then
                print("boss revoked: " .. tostring(r.value.reason))
                mine = false
            end
        else
            tick = tick + 1
            if me:sub(-1) == "1" then g:broadcast("room", "hello", me) end
            if tick <= WRITES then s:set("tick-" .. me, tick) end
            if not mine and R.register("boss", nil, R.EVENTUAL) then
                mine = true
                print("boss mine")
            end
            show("members", "members " .. #g:get_members("room"))
            show("boss", "boss " .. (R.lookup("boss") or "-"))
            show("crdt", crdt_line(s))
        end
    end
end

return { main = main }
