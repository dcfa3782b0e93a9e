-- The per-worker process kernel.
--
-- One copy runs in every worker's Lua state. It owns what is cheapest to keep
-- inside Lua: process records, mailboxes, channels and select, so that a send
-- between two processes of the same worker never leaves the interpreter.
-- Everything that crosses a worker, a node or needs the operating system goes
-- through `H`, the host table built in Rust (see host.rs).
--
-- Yield protocol with the Rust scheduler (scheduler/worker.rs):
--   yield BLOCK   the process waits for a wake-up (H.wake)
--   yield KILL    the process asked to die ("terminated")
--   yield ()      preempted by the time-slice hook; requeue
local H, BLOCK, KILL, NODE = ...

local co_create, co_yield, co_resume = coroutine.create, coroutine.yield, coroutine.resume
local co_running, co_status, co_close = coroutine.running, coroutine.status, coroutine.close
local co_isyieldable = coroutine.isyieldable
local traceback = debug.traceback
local setmetatable, getmetatable, type, select, error = setmetatable, getmetatable, type, select, error
local tostring, pairs, next, rawget, rawset, rawequal = tostring, pairs, next, rawget, rawset, rawequal
local pcall, xpcall, load, ipairs, tonumber = pcall, xpcall, load, ipairs, tonumber
local tremove, tpack, tunpack, sfind, ssub = table.remove, table.pack, table.unpack, string.find, string.sub
local mtype = math.type

local wake, remote_send, now_ms = H.wake, H.send, H.now

local PROCS = {}                          -- slot -> process record
local BYPID = {}                          -- pid string -> process record
local CO2REC = setmetatable({}, { __mode = "k" }) -- coroutine -> record (also nested ones)
local DEFS = {}                           -- "ns:name" -> factory
local TIMERS = {}                         -- timer id -> channel
local next_timer = 0

---------------------------------------------------------------------------
-- errors
---------------------------------------------------------------------------
local KINDS = {
  INVALID = "INVALID", NOT_FOUND = "NOT_FOUND", ALREADY_EXISTS = "ALREADY_EXISTS",
  PERMISSION_DENIED = "PERMISSION_DENIED", UNAVAILABLE = "UNAVAILABLE", TIMEOUT = "TIMEOUT",
  INTERNAL = "INTERNAL",
}
local ERR = {}
ERR.__index = ERR
ERR.__tostring = function(e) return e.message end
ERR.__name = "error"
H.set_err_mt(ERR)
local function new_error(kind, message)
  return setmetatable({ kind = kind, message = message }, ERR)
end
-- Host functions report failure as (nil, kind, message); turn that into (nil, err).
local function herr(v, kind, message)
  if kind ~= nil then return nil, new_error(kind, message) end
  return v
end
local function invalid(msg) return nil, new_error("INVALID", msg) end

---------------------------------------------------------------------------
-- current process
---------------------------------------------------------------------------
local function current()
  local co = co_running()
  local rec = CO2REC[co]
  if rec == nil then error("this call must run inside a process", 3) end
  return rec
end

local function block()
  co_yield(BLOCK)
end

---------------------------------------------------------------------------
-- value copy between processes of the same worker
---------------------------------------------------------------------------
local Channel = {}
Channel.__index = Channel
Channel.__name = "channel"

local function copy(v, depth)
  local tv = type(v)
  if tv ~= "table" then
    if tv == "function" or tv == "thread" or tv == "userdata" then
      error("cannot send a value of type " .. tv, 0)
    end
    return v
  end
  local mt = getmetatable(v)
  if mt ~= nil and mt ~= ERR then error("cannot send a " .. (mt.__name or "table with a metatable"), 0) end
  if depth > 64 then error("cannot send: table nesting deeper than 64 (cycle?)", 0) end
  local out = {}
  for k, x in next, v do
    out[copy(k, depth + 1)] = copy(x, depth + 1)
  end
  if mt == ERR then setmetatable(out, ERR) end
  return out
end

---------------------------------------------------------------------------
-- channels
---------------------------------------------------------------------------
-- A waiter is { rec, sel, case, value, ok, done }; `sel` is shared by all
-- waiters of one select so that only the first completion counts.
local function live(w)
  return not w.done and not w.rec.dead and (w.sel == nil or not w.sel.done)
end

local function pop_live(q)
  while q[1] ~= nil do
    local w = tremove(q, 1)
    if live(w) then return w end
  end
  return nil
end

local function complete(w, value, ok)
  w.done = true
  w.value = value
  w.ok = ok
  local sel = w.sel
  if sel then
    sel.done = true
    sel.case = w.case
  end
  wake(w.rec.slot)
end

local function new_channel(cap)
  return setmetatable({ buf = {}, h = 1, t = 0, cap = cap, closed = false, rq = {}, sq = {} }, Channel)
end

-- Puts without blocking; returns true when the value was taken.
local function try_send(ch, v)
  if ch.closed then error("send on closed channel", 0) end
  local w = pop_live(ch.rq)
  if w then
    complete(w, v, true)
    return true
  end
  if ch.t - ch.h + 1 < ch.cap then
    local t = ch.t + 1
    ch.buf[t] = v
    ch.t = t
    return true
  end
  return false
end

-- Takes without blocking; returns got, value, ok.
local function try_receive(ch)
  local h = ch.h
  if h <= ch.t then
    local buf = ch.buf
    local v = buf[h]
    buf[h] = nil
    h = h + 1
    ch.h = h
    if h > ch.t then ch.h, ch.t = 1, 0 end
    -- a sender blocked on a full buffer can now move its value in
    local s = ch.sq[1] and pop_live(ch.sq)
    if s then
      local t = ch.t + 1
      buf[t] = s.value
      ch.t = t
      complete(s, nil, true)
    end
    return true, v, true
  end
  local s = ch.sq[1] and pop_live(ch.sq)
  if s then
    local v = s.value
    complete(s, nil, true)
    return true, v, true
  end
  if ch.closed then return true, nil, false end
  return false
end

function Channel:send(v)
  if try_send(self, v) then return true end
  local w = { rec = current(), value = v }
  local sq = self.sq
  sq[#sq + 1] = w
  repeat block() until w.done
  if w.ok == false then error("send on closed channel", 2) end
  return true
end

function Channel:receive()
  local got, v, ok = try_receive(self)
  if got then return v, ok end
  local w = { rec = current() }
  local rq = self.rq
  rq[#rq + 1] = w
  repeat block() until w.done
  return w.value, w.ok
end

function Channel:close()
  if self.closed then return end
  self.closed = true
  local w = pop_live(self.rq)
  while w do
    complete(w, nil, false)
    w = pop_live(self.rq)
  end
  w = pop_live(self.sq)
  while w do
    complete(w, nil, false)
    w = pop_live(self.sq)
  end
end

function Channel:case_receive()
  return { ch = self, recv = true }
end

function Channel:case_send(v)
  return { ch = self, recv = false, value = v }
end

function Channel:len()
  return self.t - self.h + 1
end

local function unqueue(q, w)
  for i = 1, #q do
    if q[i] == w then
      tremove(q, i)
      return
    end
  end
end

local select_turn = 0
local function select_cases(cases)
  if type(cases) ~= "table" then return invalid("channel.select expects a table of cases") end
  local n = #cases
  if n == 0 and not cases.default then return invalid("channel.select needs at least one case") end
  -- rotate the starting case so that a busy channel cannot starve the others
  select_turn = select_turn + 1
  for j = 0, n - 1 do
    local i = (select_turn + j) % n + 1
    local c = cases[i]
    if type(c) ~= "table" or getmetatable(c.ch) ~= Channel then
      return invalid("channel.select: case " .. i .. " is not a channel case")
    end
    if c.recv then
      local got, v, ok = try_receive(c.ch)
      if got then return { channel = c.ch, value = v, ok = ok } end
    elseif try_send(c.ch, c.value) then
      return { channel = c.ch, ok = true }
    end
  end
  if cases.default then return { default = true } end
  local rec = current()
  local sel = { done = false }
  local ws = {}
  for i = 1, n do
    local c = cases[i]
    local w = { rec = rec, sel = sel, case = i, value = c.value }
    ws[i] = w
    local q = c.recv and c.ch.rq or c.ch.sq
    q[#q + 1] = w
  end
  repeat block() until sel.done
  local i = sel.case
  for k = 1, n do
    if k ~= i then
      local c = cases[k]
      unqueue(c.recv and c.ch.rq or c.ch.sq, ws[k])
    end
  end
  local c, w = cases[i], ws[i]
  if c.recv then return { channel = c.ch, value = w.value, ok = w.ok } end
  if w.ok == false then error("send on closed channel", 2) end
  return { channel = c.ch, ok = true }
end

local channel = {
  new = function(cap)
    if cap ~= nil and (mtype(cap) ~= "integer" or cap < 0) then
      error("channel.new: capacity must be a non-negative integer", 2)
    end
    return new_channel(cap or 0)
  end,
  select = select_cases,
}

---------------------------------------------------------------------------
-- messages and mailboxes
---------------------------------------------------------------------------
local MSG = {}
MSG.__index = MSG
MSG.__name = "message"
function MSG:topic() return self[1] end
function MSG:from() return self[2] end
function MSG:payload() return self end
function MSG:data() return self[3] end

local INF = math.huge

local function inbox_of(rec)
  local ch = rec.inbox
  if ch == nil then
    ch = new_channel(INF)
    rec.inbox = ch
  end
  return ch
end

local function events_of(rec)
  local ch = rec.events
  if ch == nil then
    ch = new_channel(INF)
    rec.events = ch
  end
  return ch
end

-- Delivers one message to a record of this worker.
local function deliver(rec, topic, from, data)
  local subs = rec.subs
  if subs ~= nil then
    local sub = subs[topic]
    if sub ~= nil then
      if sub.message then
        try_send(sub.ch, setmetatable({ topic, from, data }, MSG))
      else
        try_send(sub.ch, data)
      end
      return
    end
  end
  try_send(inbox_of(rec), setmetatable({ topic, from, data }, MSG))
end

---------------------------------------------------------------------------
-- process records and lifecycle
---------------------------------------------------------------------------
-- Marks a record dead. The record stays in PROCS (anchoring the coroutine)
-- until Rust has finished with the slot and clears it.
local function reap(rec)
  if rec.dead then return end
  rec.dead = true
  BYPID[rec.pid] = nil
end

local function message_handler(e)
  if getmetatable(e) == ERR then e = e.message end
  return traceback(tostring(e), 2)
end

local function run_main(rec)
  local factory = DEFS[rec.def]
  local mod = factory(rec.env, tunpack(rec.args, 1, rec.args.n))
  local fn = mod
  local method = rec.method
  if sfind(method, "?", 1, true) == 1 then
    -- optional method (scripts): use it when the file provides it
    method = ssub(method, 2)
    local f = type(mod) == "table" and mod[method] or rawget(rec.env, method)
    if type(f) == "function" then
      method = ""
      fn = f
    elseif type(mod) ~= "function" then
      return mod
    end
  end
  if method ~= nil and method ~= "" then
    if type(mod) == "table" then fn = mod[method] end
    if fn == nil then fn = rawget(rec.env, method) end
    if type(fn) ~= "function" then
      error("process " .. rec.def .. ": method '" .. method .. "' is not a function", 0)
    end
  elseif type(mod) ~= "function" then
    -- a script: the chunk itself was the process body and has already run
    return mod
  end
  local args = rec.args
  rec.args = nil
  return fn(tunpack(args, 1, args.n))
end

-- The body of every process coroutine. Rust passes the slot on first resume.
local function ENTRY(slot)
  local rec = PROCS[slot]
  local ok, res = xpcall(run_main, message_handler, rec)
  reap(rec)
  H.exit(slot, ok, res)
end

-- Compiles a definition once per worker. The source is wrapped in a function
-- taking `_ENV` so that each process gets fresh top-level locals and globals
-- without paying for a new load. The wrapper adds no line: tracebacks keep
-- the file's own line numbers.
local function define(id, source, chunkname)
  local wrapped = "return function(_ENV, ...) " .. source .. "\nend"
  local fn, err = load(wrapped, chunkname, "t", {})
  if not fn then return nil, err end
  local ok, factory = pcall(fn)
  if not ok then return nil, tostring(factory) end
  DEFS[id] = factory
  return true
end

local function ensure_def(id)
  if DEFS[id] ~= nil then return true end
  local src, name = H.source(id)
  if src == nil then return nil, name end
  return define(id, src, name)
end

local ENV_MT -- set by the sandbox section below

-- Creates the Lua side of a process that Rust placed on this worker.
local function start(slot, pid, id, method, parent, args)
  local rec = {
    slot = slot, pid = pid, def = id, method = method, parent = parent,
    env = setmetatable({}, ENV_MT), args = args,
  }
  local co = co_create(ENTRY)
  rec.co = co
  PROCS[slot] = rec
  BYPID[pid] = rec
  CO2REC[co] = rec
  return co
end

local function spawn_with(flags, id, host, ...)
  if type(id) ~= "string" or type(host) ~= "string" then
    return invalid("spawn requires a process id and a host")
  end
  local me = CO2REC[co_running()]
  local parent = me and me.pid or ""
  local slot, pid, method = H.place(id, host)
  if slot == nil then return herr(nil, pid, method) end
  if slot >= 0 then
    local ok, err = ensure_def(id)
    if not ok then return nil, new_error("INVALID", err) end
    local args = tpack(...)
    for i = 1, args.n do
      local ok, c = pcall(copy, args[i], 0)
      if not ok then return invalid(c) end
      args[i] = c
    end
    local co = start(slot, pid, id, method, parent, args)
    return herr(H.started(slot, co, parent, flags))
  end
  return herr(H.spawn_remote(-slot - 1, pid, id, method, parent, flags, ...))
end

---------------------------------------------------------------------------
-- the `process` module
---------------------------------------------------------------------------
local process = {}

process.event = setmetatable({}, {
  __index = { CANCEL = "pid.cancel", EXIT = "pid.exit", LINK_DOWN = "pid.link.down" },
  __newindex = function() error("process.event is read-only", 2) end,
})

function process.pid() return current().pid end

function process.spawn(id, host, ...) return spawn_with(0, id, host, ...) end
function process.spawn_monitored(id, host, ...) return spawn_with(1, id, host, ...) end
function process.spawn_linked(id, host, ...) return spawn_with(2, id, host, ...) end
function process.spawn_linked_monitored(id, host, ...) return spawn_with(3, id, host, ...) end

local function pack_payload(n, ...)
  if n <= 1 then return (...) end
  return { ... }
end

function process.send(dest, topic, ...)
  if type(topic) ~= "string" then
    return invalid("send requires at least destination and topic arguments")
  end
  if sfind(topic, "@", 1, true) == 1 then return invalid("cannot send to @ topics") end
  local me = current()
  local n = select("#", ...)
  local rec = BYPID[dest]
  if rec == nil then
    if type(dest) ~= "string" then return invalid("destination must be a pid or a name") end
    local ok, err = pcall(copy, pack_payload(n, ...), 0)
    if not ok then return invalid(err) end
    local pid, kind, msg = remote_send(me.slot, dest, topic, err)
    if pid == nil then return nil, new_error(kind, msg) end
    if pid == true then return true end
    rec = BYPID[pid]
    if rec == nil then return true end -- resolved to a process that just exited
    deliver(rec, topic, me.pid, err)
    return true
  end
  local data
  if n == 1 then
    data = ...
    if type(data) == "table" then
      local ok, c = pcall(copy, data, 0)
      if not ok then return invalid(c) end
      data = c
    elseif type(data) == "function" or type(data) == "userdata" or type(data) == "thread" then
      return invalid("cannot send a value of type " .. type(data))
    end
  else
    local ok, c = pcall(copy, pack_payload(n, ...), 0)
    if not ok then return invalid(c) end
    data = c
  end
  deliver(rec, topic, me.pid, data)
  return true
end

function process.inbox() return inbox_of(current()) end
function process.events() return events_of(current()) end

function process.listen(topic, opts)
  if type(topic) ~= "string" or topic == "" then error("topic cannot be empty", 2) end
  if sfind(topic, "@", 1, true) == 1 then error("cannot listen to @ topics", 2) end
  local rec = current()
  local subs = rec.subs
  if subs == nil then
    subs = {}
    rec.subs = subs
  end
  local sub = { ch = new_channel(INF), message = type(opts) == "table" and opts.message == true }
  subs[topic] = sub
  return sub.ch
end

function process.unlisten(ch)
  local rec = current()
  local subs = rec.subs
  if subs == nil then return false end
  for topic, sub in pairs(subs) do
    if sub.ch == ch then
      subs[topic] = nil
      ch:close()
      return true
    end
  end
  return false
end

local function target_op(name, fn)
  return function(dest, ...)
    if type(dest) ~= "string" then return invalid(name .. " requires a destination argument") end
    local me = current()
    return herr(fn(me.slot, dest, ...))
  end
end

process.monitor = target_op("monitor", H.monitor)
process.unmonitor = target_op("unmonitor", H.unmonitor)
process.link = target_op("link", H.link)
process.unlink = target_op("unlink", H.unlink)

function process.cancel(dest, reason)
  if type(dest) ~= "string" then return invalid("cancel requires a destination argument") end
  if reason ~= nil and type(reason) ~= "string" then return invalid("cancel reason must be a string") end
  return herr(H.cancel(current().slot, dest, reason or ""))
end

function process.terminate(dest)
  if type(dest) ~= "string" then return invalid("terminate requires a destination argument") end
  local me = current()
  if dest == me.pid then co_yield(KILL) end
  local r, kind, msg = H.terminate(me.slot, dest)
  if kind ~= nil then return nil, new_error(kind, msg) end
  return true
end

function process.set_options(opts)
  if type(opts) ~= "table" then return false, new_error("INVALID", "options parameter must be a table") end
  for k, v in pairs(opts) do
    if k ~= "trap_links" then return false, new_error("INVALID", "option " .. tostring(k) .. " is not supported") end
    if type(v) ~= "boolean" then return false, new_error("INVALID", "trap_links must be a boolean") end
  end
  local rec = current()
  if opts.trap_links ~= nil then
    rec.trap_links = opts.trap_links
    H.trap_links(rec.slot, opts.trap_links)
  end
  return true
end

function process.get_options()
  return { trap_links = current().trap_links == true }
end

function process.exec(id, host, ...)
  local rec = current()
  local pid, err = spawn_with(4, id, host, ...)
  if not pid then return nil, err end
  local execs = rec.execs
  if execs == nil then
    execs = {}
    rec.execs = execs
  end
  local w = { rec = rec }
  execs[pid] = w
  repeat block() until w.done
  execs[pid] = nil
  local result = w.value.result
  if result.error ~= nil then return nil, new_error("INTERNAL", result.error) end
  return result.value
end

-- Registry: names live in Rust so every worker sees them.
local registry = { LOCAL = 0, EVENTUAL = 1, CONSISTENT = 2, STRONG = 3 }
function registry.register(name, pid, scope)
  if type(name) ~= "string" or name == "" then return invalid("name must be a non-empty string") end
  if pid ~= nil and type(pid) ~= "string" then return invalid("pid must be a string") end
  if scope ~= nil and mtype(scope) ~= "integer" then
    return invalid("scope must be a number (process.registry.LOCAL|EVENTUAL|CONSISTENT|STRONG)")
  end
  return herr(H.register(current().slot, name, pid, scope or 0))
end
function registry.lookup(name)
  if type(name) ~= "string" then return invalid("name must be a string") end
  return herr(H.lookup(name))
end
function registry.unregister(name, scope)
  if type(name) ~= "string" then return invalid("name must be a string") end
  if scope ~= nil and mtype(scope) ~= "integer" then
    return invalid("scope must be a number (process.registry.LOCAL|EVENTUAL|CONSISTENT|STRONG)")
  end
  return herr(H.unregister(current().slot, name, scope or 0))
end
process.registry = registry

---------------------------------------------------------------------------
-- time
---------------------------------------------------------------------------
local parse_ms = H.duration_ms

local function after(d)
  local ms, err = parse_ms(d)
  if ms == nil then error(err, 3) end
  local ch = new_channel(1)
  next_timer = next_timer + 1
  TIMERS[next_timer] = ch
  H.timer(next_timer, ms)
  return ch
end

local TIME = {}
TIME.__index = TIME
TIME.__name = "time"
function TIME:unix() return self.ns // 1000000000 end
function TIME:unix_nano() return self.ns end
function TIME:unix_milli() return self.ns // 1000000 end
function TIME:sub(other) return (self.ns - other.ns) / 1e6 end
TIME.__tostring = function(t) return tostring(t.ns) end
TIME.__lt = function(a, b) return a.ns < b.ns end
TIME.__le = function(a, b) return a.ns <= b.ns end
TIME.__eq = function(a, b) return a.ns == b.ns end

local time = {
  after = function(d) return after(d) end,
  sleep = function(d)
    after(d):receive()
  end,
  now = function() return setmetatable({ ns = H.wall_ns() }, TIME) end,
  monotonic = function() return now_ms() end,
}

---------------------------------------------------------------------------
-- entry points called by the Rust worker loop
---------------------------------------------------------------------------
local K = {}

K.start = start
K.define = define
K.PROCS = PROCS

-- Starts a process another worker (or the node) placed here.
K.spawn_order = function(slot, pid, id, method, parent, args)
  local ok, err = ensure_def(id)
  if not ok then return nil, err end
  return start(slot, pid, id, method, parent, args)
end
K.reap = function(slot)
  local rec = PROCS[slot]
  if rec then reap(rec) end
end

-- A message from another worker or node.
K.deliver = function(pid, topic, from, data)
  local rec = BYPID[pid]
  if rec ~= nil then deliver(rec, topic, from, data) end
end

-- A lifecycle event (EXIT, LINK_DOWN, CANCEL) for the process in `slot`.
K.event = function(slot, kind, from, value, err, reason)
  local rec = PROCS[slot]
  if rec == nil or rec.dead then return end
  local ev = { kind = kind, from = from, at = H.wall_ns() // 1000000 }
  if kind == "pid.cancel" then
    ev.reason = reason
  else
    ev.result = { value = value, error = err }
  end
  local execs = rec.execs
  if execs ~= nil and kind == "pid.exit" then
    local w = execs[from]
    if w ~= nil then
      complete(w, ev, true)
      return
    end
  end
  try_send(events_of(rec), ev)
end

K.timer = function(id)
  local ch = TIMERS[id]
  if ch ~= nil then
    TIMERS[id] = nil
    if not ch.closed then try_send(ch, time.now()) end
  end
end

K.new_error = new_error
K.ERR = ERR
K.KINDS = KINDS
K.copy = copy
K.modules = { process = process, channel = channel, time = time }
K.set_env_mt = function(mt) ENV_MT = mt end
K.count = function()
  local n = 0
  for _ in pairs(PROCS) do n = n + 1 end
  return n
end

-- Coroutines created by user code. A kernel yield (BLOCK/KILL) or a
-- preemption inside a nested coroutine must reach the scheduler, not the
-- user's resume, so the user-facing resume forwards those and continues.
local ucoroutine = {}
local function forward(rec, co, ok, ...)
  if ok then
    local n = select("#", ...)
    local first = ...
    if n == 1 and (rawequal(first, BLOCK) or rawequal(first, KILL)) then
      H.set_running(rec.co)
      co_yield(first)
      H.set_running(co)
      return forward(rec, co, co_resume(co))
    elseif n == 0 and H.take_preempted() then
      H.set_running(rec.co)
      co_yield()
      H.set_running(co)
      return forward(rec, co, co_resume(co))
    end
  end
  return ok, ...
end

function ucoroutine.create(f)
  local co = co_create(f)
  local rec = CO2REC[co_running()]
  if rec then CO2REC[co] = rec end
  return co
end
function ucoroutine.resume(co, ...)
  local rec = CO2REC[co]
  if rec == nil then return co_resume(co, ...) end
  H.set_running(co)
  local function finish(...)
    H.set_running(co_running())
    return ...
  end
  return finish(forward(rec, co, co_resume(co, ...)))
end
function ucoroutine.wrap(f)
  local co = ucoroutine.create(f)
  return function(...)
    local function unwrap(ok, ...)
      if not ok then error((...), 0) end
      return ...
    end
    return unwrap(ucoroutine.resume(co, ...))
  end
end
function ucoroutine.yield(...)
  local co = co_running()
  local rec = CO2REC[co]
  if rec ~= nil and rec.co == co then error("attempt to yield from outside a coroutine", 2) end
  return co_yield(...)
end
function ucoroutine.running()
  local co, main = co_running()
  local rec = CO2REC[co]
  if rec ~= nil and rec.co == co then return co, true end
  return co, main
end
function ucoroutine.isyieldable()
  local co = co_running()
  local rec = CO2REC[co]
  if rec ~= nil and rec.co == co then return false end
  return co_isyieldable()
end
ucoroutine.status = co_status
ucoroutine.close = co_close
K.coroutine = ucoroutine

return K
