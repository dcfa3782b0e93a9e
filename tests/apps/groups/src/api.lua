-- Walks the pg, EVENTUAL/STRONG name and kv.crdt APIs on a one-node
-- cluster; prints "<part> ok" per part, or "<part> FAILED: <what>".
local pg = require("pg")
local store = require("store")
local time = require("time")
local system = require("system")

local function check(cond, what)
    if not cond then error(what, 0) end
end

local function next_event(ch)
    local r = channel.select{ ch:case_receive(), time.after("2s"):case_receive() }
    check(r.channel == ch, "an event within 2s")
    return r.value
end

local function groups()
    local missing, err = pg.open("app:nope")
    check(missing == nil and err.kind == "NOT_FOUND", "unknown scope is NOT_FOUND")
    local g = pg.open("app:chat")
    local sub, members = g:monitor("room")
    check(#members == 0, "empty snapshot")
    check(g:join("room") == true, "join")
    local ev = next_event(sub:channel())
    check(ev.kind == "member.joined" and ev.path == "room" and ev.data.PIDs[1] == process.pid(), "joined event")
    check(g:join({ "room", "lobby" }) == true, "multi-join")
    next_event(sub:channel())
    local m = g:get_members("room")
    check(#m == 2 and m[1] == process.pid() and m[2] == process.pid(), "a pid per join")
    check(#g:get_local_members("room") == 2, "local members")
    check(#g:get_members("unknown") == 0, "unknown group is empty")
    local wg = g:which_groups()
    check(#wg == 2 and wg[1] == "lobby" and wg[2] == "room", "which_groups sorted")
    check(#g:which_local_groups() == 2, "which_local_groups")
    -- broadcast: one copy per member process, from the caller
    local inbox = process.listen("news")
    check(g:broadcast("room", "news", "hi") == true, "broadcast")
    local r = channel.select{ inbox:case_receive(), time.after("2s"):case_receive() }
    check(r.channel == inbox and r.value == "hi", "broadcast reached the member")
    r = channel.select{ inbox:case_receive(), time.after("100ms"):case_receive() }
    check(r.channel ~= inbox, "one copy per process, not per join")
    check(g:broadcast_local("lobby", "news", "x") == true, "broadcast_local")
    check(g:leave("room") == true, "leave once")
    check(next_event(sub:channel()).kind == "member.left", "left event")
    check(#g:get_members("room") == 1, "one join left")
    local ok, lerr = g:leave("nowhere")
    check(ok == nil and lerr.kind == "INVALID", "leaving a group never joined")
    local _, jerr = g:join("")
    check(jerr.kind == "INVALID", "empty group name")
    local esub, snapshot = g:events()
    check(#snapshot.room == 1 and #snapshot.lobby == 1, "events snapshot")
    -- a helper joins and exits: watchers see it leave
    local helper = process.spawn("app:helper", "app:processes", "join")
    check(next_event(esub:channel()).kind == "member.joined", "helper joined")
    process.send(helper, "go")
    local left = next_event(esub:channel())
    check(left.kind == "member.left" and left.data.PIDs[1] == helper, "an exited process leaves")
    check(sub:close() == true and esub:close() == true, "close")
    -- limits
    local s = pg.open("app:small")
    check(s:join({ "a", "b" }), "within max_groups")
    local _, gerr = s:join("c")
    check(gerr.kind == "INVALID", "max_groups refuses")
    check(s:join("a"), "second member of a")
    local _, merr = s:join("a")
    check(merr.kind == "INVALID", "max_members_per_group refuses")
    check(s:release() == true, "release")
    local _, rerr = s:join("a")
    check(rerr.kind == "INVALID", "a released instance refuses")
    check(#pg.open("app:small"):get_members("a") == 0, "release left the groups")
end

local function eventual()
    local R = process.registry
    check(R.register("ev", nil, R.EVENTUAL) == true, "register")
    check(R.register("ev", nil, R.EVENTUAL) == true, "register again")
    check(R.lookup("ev") == process.pid(), "lookup")
    local helper = process.spawn("app:helper", "app:processes", "idle")
    local ok, err = R.register("ev", helper, R.EVENTUAL)
    check(ok == nil and err.kind == "ALREADY_EXISTS", "taken by another process: " .. tostring(err))
    ok, err = R.register("ev", helper)
    check(ok == nil and err.kind == "ALREADY_EXISTS", "LOCAL may not shadow it")
    check(R.register("mine", helper, R.EVENTUAL) == true, "register for another local process")
    process.send(helper, "go")
    for _ = 1, 50 do
        if R.lookup("mine") == nil then break end
        time.sleep("20ms")
    end
    check(R.lookup("mine") == nil, "released when the process exits")
    check(R.unregister("ev", R.EVENTUAL) == true, "unregister")
    check(R.lookup("ev") == nil, "gone")
    ok, err = R.register("ev", "{other@node|0.1}", R.EVENTUAL)
    check(ok == nil and err.kind == "INVALID", "a pid of another node")
end

local function strong()
    local R = process.registry
    check(R.register("chief", nil, R.STRONG) == true, "register")
    check(R.lookup("chief") == process.pid(), "lookup")
    check(R.register("chief", nil, R.STRONG) == true, "register again")
    local helper = process.spawn("app:helper", "app:processes", "local-x")
    time.sleep("100ms")
    local ok, err = R.register("x", nil, R.STRONG)
    check(ok == nil and err.kind == "ALREADY_EXISTS", "a LOCAL binding elsewhere refuses: " .. tostring(err))
    check(tostring(err):find("rejected by " .. system.node.id(), 1, true), "the refusing node is named: " .. tostring(err))
    process.send(helper, "go")
    ok, err = R.register("chief", helper, R.STRONG)
    check(ok == nil and err.kind == "ALREADY_EXISTS", "taken: " .. tostring(err))
    check(R.unregister("chief", R.STRONG) == true, "unregister")
    check(R.lookup("chief") == nil, "gone")
end

local function crdt()
    local s = store.get("app:cache")
    local info = s:info()
    check(info.backend == "kv.crdt" and info.consistency == "eventual" and info.durable == true, "info")
    check(s:set("a", { n = 1 }) == true, "set")
    check(s:get("a").n == 1, "get")
    check(s:has("a") and not s:has("b"), "has")
    local _, err = s:get("b")
    check(err.kind == "NOT_FOUND", "missing key")
    local e = s:entry("a")
    check(e.key == "a" and e.value.n == 1 and type(e.version) == "number", "entry")
    local _, perr = s:put("a", 2, { only_if_absent = true })
    check(perr.kind == "INVALID", "conditions are refused")
    check(s:put("c", 3).value == 3, "plain put")
    check(s:set("t", 1, "150ms") == true, "set with ttl")
    check(s:has("t"), "ttl key present")
    time.sleep("300ms")
    check(not s:has("t"), "ttl key expired")
    local page = s:list({ prefix = "", limit = 1 })
    check(#page.items == 1 and page.items[1].key == "a" and page.has_more, "list page")
    page = s:list({ after = page.cursor })
    check(#page.items == 1 and page.items[1].key == "c", "next page")
    check(s:delete("a") == true and s:delete("a") == false, "delete")
    check(s:get("a") == nil, "deleted")
end

local function part(name, fn)
    local ok, err = pcall(fn)
    print(ok and (name .. " ok") or (name .. " FAILED: " .. tostring(err)))
end

-- Registers and drops the STRONG name "probe" once a second.
local function probe()
    local R = process.registry
    while true do
        local ok, err = R.register("probe", nil, R.STRONG)
        if ok then
            print("strong ok")
            R.unregister("probe", R.STRONG)
        else
            print("strong err " .. tostring(err))
        end
        time.sleep("1s")
    end
end

local function main(mode)
    if mode == "probe" then return probe() end
    if mode ~= "api" then return end
    for _ = 1, 100 do
        if system.raft.is_leader() then break end
        time.sleep("100ms")
    end
    part("groups", groups)
    part("eventual", eventual)
    part("strong", strong)
    part("crdt", crdt)
    -- Counts starts in the durable kv.crdt store: a restart with the same
    -- data directory must find the previous count.
    local cache = store.get("app:cache")
    local boots = (cache:get("boots") or 0) + 1
    cache:set("boots", boots)
    print("boots " .. boots)
    system.exit(0)
end

-- "join": joins chat/room and exits on "go"; "idle": waits for "go";
-- "local-x": holds the LOCAL name "x" until "go".
local function helper(mode)
    if mode == "join" then pg.open("app:chat"):join("room") end
    if mode == "local-x" then process.registry.register("x") end
    process.inbox():receive()
end

return { main = main, helper = helper }
