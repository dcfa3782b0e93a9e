-- One history client: loops over random operations on the kv.raft store
-- app:kv, the locks L1..LN and the CONSISTENT names N1..NN until it is
-- cancelled, and prints one line before and one after every call:
--
--   HIST {"ev":"invoke",   "t", "node", "client", "op", "kind", "f", <args>}
--   HIST {"ev":"complete", "t", "node", "client", "op", "kind", "f", <args>,
--         "ok", <results>, "err_kind", "err"}
--
-- `t` is wall-clock nanoseconds (comparable between the nodes of one
-- machine), taken before the invoke line and after the call returns, so
-- the call took effect inside [invoke t, complete t]. An invoke without
-- its complete means the outcome is unknown (the node was killed, or the
-- run ended). `op` counts this client's calls; `client` is unique across
-- nodes and restarts, and every value written is "<client>#<op>", unique
-- too, so a read names the write it saw.
--
-- kind "kv":   f = read | set | put | put_absent | put_version | delete;
--              args key, value, version (if_version); results got and
--              got_version (read), new_version (put*), existed (delete)
-- kind "lock": f = acquire | acquire_wait | release; args name; results
--              token, released
-- kind "name": f = register | unregister | lookup; args name; results
--              pid, removed
--
-- Also:
--   HIST {"ev":"client", "client", "group", "pid"}       at start
--   HIST {"ev":"lost", "client", "name", "kind", "since", "at"}  a CANCEL
--        told this client it lost a lock (kind "lock") or a CONSISTENT name
--        (kind "name"); the loss happened after `since` (ns, the
--        previous look at the events) and `at` (ms, when it was sent)
local store = require("store")
local time = require("time")
local system = require("system")
local json = require("json")

local C = process.registry.CONSISTENT

local function now()
    return time.now():unix_nano()
end

local function emit(t)
    print("HIST " .. json.encode(t))
end

local function pick(cfg, id, seq, known)
    local mix = cfg.mix
    local r = math.random() * (mix.kv + mix.lock + mix.name)
    local x = math.random(100)
    if r < mix.kv then
        local key = "k" .. math.random(cfg.keys)
        local value = id .. "#" .. seq
        if x <= 35 then
            return { kind = "kv", f = "read", key = key }
        elseif x <= 50 then
            return { kind = "kv", f = "set", key = key, value = value }
        elseif x <= 60 then
            return { kind = "kv", f = "put", key = key, value = value }
        elseif x <= 72 then
            return { kind = "kv", f = "put_absent", key = key, value = value }
        elseif x <= 90 then
            -- The version last seen, or a guess that is usually wrong.
            return { kind = "kv", f = "put_version", key = key, value = value,
                version = known[key] or math.random(1, 100) }
        end
        return { kind = "kv", f = "delete", key = key }
    elseif r < mix.kv + mix.lock then
        local name = "L" .. math.random(cfg.locks)
        if x <= 40 then
            return { kind = "lock", f = "acquire", name = name }
        elseif x <= 55 then
            return { kind = "lock", f = "acquire_wait", name = name }
        end
        return { kind = "lock", f = "release", name = name }
    end
    local name = "N" .. math.random(cfg.names)
    if x <= 35 then
        return { kind = "name", f = "register", name = name }
    elseif x <= 65 then
        return { kind = "name", f = "unregister", name = name }
    end
    return { kind = "name", f = "lookup", name = name }
end

-- Runs one call; fills `res` with its results. Returns false and the error
-- when the call failed.
local function call(s, op, res)
    local f = op.f
    if op.kind == "kv" then
        if f == "read" then
            local e, err = s:entry(op.key)
            if not e then return false, err end
            res.got, res.got_version = e.value, e.version
        elseif f == "set" then
            local ok, err = s:set(op.key, op.value)
            if not ok then return false, err end
        elseif f == "delete" then
            local existed, err = s:delete(op.key)
            if existed == nil then return false, err end
            res.existed = existed
        else
            local opts
            if f == "put_absent" then
                opts = { only_if_absent = true }
            elseif f == "put_version" then
                opts = { if_version = op.version }
            end
            local e, err = s:put(op.key, op.value, opts)
            if not e then return false, err end
            res.new_version = e.version
        end
    elseif op.kind == "lock" then
        if f == "release" then
            local released, err = system.lock.release(op.name)
            if released == nil then return false, err end
            res.released = released
        else
            local ok, err, token = system.lock.acquire(op.name, f == "acquire_wait" and { wait = "200ms" } or nil)
            if not ok then return false, err end
            res.token = token
        end
    else
        if f == "register" then
            local ok, err = process.registry.register(op.name, nil, C)
            if not ok then return false, err end
        elseif f == "unregister" then
            local removed, err = process.registry.unregister(op.name, C)
            if removed == nil then return false, err end
            res.removed = removed
        else
            local pid, err = process.registry.lookup(op.name)
            if not pid then return false, err end
            res.pid = pid
        end
    end
    return true
end

local function main(id, node, group, cfg)
    local events = process.events()
    local s = assert(store.get("app:kv"))
    emit({ ev = "client", t = now(), node = node, group = group, client = id, pid = process.pid() })
    local known = {}
    local seq = 0
    local last_look = now()
    while true do
        local look = now()
        while true do
            local r = channel.select{ events:case_receive(), default = true }
            if r.default then break end
            local ev = r.value
            if ev.kind == process.event.CANCEL then
                local reason = ev.reason or ""
                local lock = reason:match("^lock (.-) lost")
                local name = reason:match("^name (.-) lost")
                if not lock and not name then return "stopped" end
                emit({ ev = "lost", t = now(), node = node, client = id, name = lock or name,
                    kind = lock and "lock" or "name", since = last_look, at = ev.at, reason = reason })
            end
        end
        last_look = look
        seq = seq + 1
        local op = pick(cfg, id, seq, known)
        op.node, op.client, op.op = node, id, seq
        op.ev, op.t = "invoke", now()
        emit(op)
        local res = {}
        local ok, err = call(s, op, res)
        local t = now()
        for k, v in pairs(res) do op[k] = v end
        op.ev, op.t, op.ok = "complete", t, ok
        if not ok then
            op.err_kind, op.err = err.kind, tostring(err)
        end
        emit(op)
        if op.kind == "kv" then
            if ok and op.f == "delete" then
                known[op.key] = nil
            elseif ok and op.f ~= "set" then
                known[op.key] = res.got_version or res.new_version
            end
        end
        time.sleep(math.random(1, cfg.pause_ms))
    end
end

return { main = main }
