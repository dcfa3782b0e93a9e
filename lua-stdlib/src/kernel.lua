-- The per-worker process kernel.
--
-- One copy runs in every worker's Lua state. It owns what is cheapest to keep
-- inside Lua: process records, mailboxes, channels and select, so that a send
-- between two processes of the same worker never leaves the interpreter.
-- Everything that crosses a worker, a node or needs the operating system goes
-- through `H`, the host table built in Rust (see host.rs).
--
-- Kernel code is never preempted (the hook checks the chunk name), so each
-- function here runs as one step with respect to other processes.
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
local tremove, tpack, tunpack, sfind, ssub, sbyte = table.remove, table.pack, table.unpack, string.find, string.sub, string.byte
local mtype = math.type
local sgsub = string.gsub

local wake, remote_send, now_ms = H.wake, H.send, H.now

local PROCS = {}                          -- slot -> process record
local COS = {}                            -- slot -> coroutine (anchors it for the scheduler)
local BYPID = {}                          -- pid string -> process record
local CO2REC = setmetatable({}, { __mode = "k" }) -- user-created coroutine -> record
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
-- CUR[1] is the slot of the process being resumed; the Rust worker writes
-- it before every resume, so finding the caller costs two table reads.
local CUR = { 0 }

local function current()
  local rec = PROCS[CUR[1]]
  if rec == nil or rec.dead then error("this call must run inside a process", 3) end
  return rec
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
  if q == nil then return nil end
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

-- Fields: h/t index the buffer, cap its capacity, w1 the single plain
-- receiver; buf, rq (receive waiters) and sq (send waiters) are created on
-- first use so that an idle mailbox stays small.
local function new_channel(cap)
  return setmetatable({ h = 1, t = 0, cap = cap }, Channel)
end

local function queue(ch, name)
  local q = ch[name]
  if q == nil then
    q = {}
    ch[name] = q
  end
  return q
end

-- Appends to the buffer, whatever the capacity (see try_send).
local function put(ch, v)
  local t = ch.t + 1
  local buf = ch.buf
  if buf == nil then
    buf = {}
    ch.buf = buf
  end
  buf[t] = v
  ch.t = t
end

-- Puts without blocking; returns true when the value was taken.
-- The common wait is one process blocked in a plain receive, kept in
-- `ch.w1` without a waiter table: the value goes into the buffer (even past
-- the capacity: that receiver is committed to take it) and the receiver is
-- woken to pick it up. `rq` holds select waiters and later receivers.
local function try_send(ch, v)
  if ch.closed then error("send on closed channel", 0) end
  local r = ch.w1
  if r ~= nil then
    ch.w1 = nil
    if not r.dead then
      put(ch, v)
      wake(r.slot)
      return true
    end
  end
  local w = pop_live(ch.rq)
  if w then
    complete(w, v, true)
    return true
  end
  if ch.t - ch.h + 1 < ch.cap then
    put(ch, v)
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
    local s = pop_live(ch.sq)
    if s then
      local t = ch.t + 1
      buf[t] = s.value
      ch.t = t
      complete(s, nil, true)
    end
    return true, v, true
  end
  local s = pop_live(ch.sq)
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
  local sq = queue(self, "sq")
  sq[#sq + 1] = w
  repeat co_yield(BLOCK) until w.done
  if w.ok == false then error("send on closed channel", 2) end
  return true
end

-- Waits for a value. Reached by a tail call so that an idle process keeps
-- only this small frame (an idle coroutine's stack must stay within Lua's
-- initial 40 slots, 20 of which the yield takes).
local function wait_receive(ch)
  local rec = current()
  while true do
    local rq = ch.rq
    if ch.w1 == nil and (rq == nil or rq[1] == nil) then
      ch.w1 = rec
      co_yield(BLOCK)
      if ch.w1 == rec then ch.w1 = nil end
      local got, v, ok = try_receive(ch)
      if got then return v, ok end
    else
      local w = { rec = rec }
      rq = queue(ch, "rq")
      rq[#rq + 1] = w
      repeat co_yield(BLOCK) until w.done
      return w.value, w.ok
    end
  end
end

function Channel:receive()
  -- fast path: a buffered value and no blocked sender
  local h = self.h
  if h <= self.t and self.sq == nil then
    local buf = self.buf
    local v = buf[h]
    buf[h] = nil
    if h == self.t then
      self.h, self.t = 1, 0
    else
      self.h = h + 1
    end
    return v, true
  end
  local got, v, ok = try_receive(self)
  if got then return v, ok end
  return wait_receive(self)
end

function Channel:close()
  if self.closed then return end
  self.closed = true
  local r = self.w1
  if r ~= nil then
    self.w1 = nil
    if not r.dead then wake(r.slot) end
  end
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
  if q == nil then return end
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
    local q = queue(c.ch, c.recv and "rq" or "sq")
    q[#q + 1] = w
  end
  repeat co_yield(BLOCK) until sel.done
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

-- A definition is { factory, method, id, optional }: the compiled wrapper,
-- the function to call ("" = the chunk is the body), the id, and whether a
-- missing method means "run the chunk" (scripts).
local function resolve_main(def, mod, env)
  local method, optional = def[2], def[4]
  if method == "" then
    if type(mod) == "function" then return mod end
    return nil
  end
  local fn = type(mod) == "table" and mod[method] or nil
  if fn == nil then fn = rawget(env, method) end
  if type(fn) == "function" then return fn end
  if optional then
    if type(mod) == "function" then return mod end
    return nil
  end
  error("process " .. def[3] .. ": method '" .. method .. "' is not a function", 0)
end

local function run_main(rec)
  local start = rec.start
  rec.start = nil
  local def, n = start[1], start.n
  local module = def[1]
  if def[2] == "" then
    -- the chunk is the process body: a tail call keeps no frame of ours
    return module(rec.env, tunpack(start, 2, n))
  end
  local mod = module(rec.env, tunpack(start, 2, n))
  local fn = resolve_main(def, mod, rec.env)
  if fn == nil then return mod end -- a script: the chunk was the body
  return fn(tunpack(start, 2, n))
end

local exit_c, exit_table = H.exit, H.exit_table

-- The body of every process coroutine; Rust passes the slot on the first
-- resume. run_main tail-calls the process function, so a process's stack
-- holds its own frames only. There is no pcall on purpose: a C frame would
-- stay on every idle process's stack (20 slots). An error kills the
-- coroutine with its stack intact and the worker asks `K.fail` for the
-- traceback; a return hands the result to `K.done`.
local function ENTRY(slot)
  return run_main(PROCS[slot])
end

-- Compiles a definition once per worker. The source is wrapped in a function
-- taking `_ENV` so that each process gets fresh top-level locals and globals
-- without paying for a new load. The wrapper adds no line: tracebacks keep
-- the file's own line numbers.
local function define(id, source, chunkname, method)
  local wrapped = "return function(_ENV, ...) " .. source .. "\nend"
  local fn, err = load(wrapped, chunkname, "t", {})
  if not fn then return nil, err end
  local ok, factory = pcall(fn)
  if not ok then return nil, tostring(factory) end
  method = method or ""
  local optional = sbyte(method, 1) == 63 -- "?name": use it when the file has it
  if optional then method = ssub(method, 2) end
  local def = { factory, method, id, optional }
  DEFS[id] = def
  return def
end

-- The definition `id`, compiled on first use in this worker.
local function get_def(id)
  local def = DEFS[id]
  if def ~= nil then return def end
  local src, name, method = H.source(id)
  if src == nil then return nil, name end
  local d, err = define(id, src, name, method)
  if d == nil then return nil, "INVALID", err end
  return d
end

local ENV_MT -- set by the sandbox section below

-- Creates the Lua side of a process placed on this worker. `start` is
-- { def, args... , n = 1 + #args }.
local function start(slot, pid, start_info, co)
  local rec = { slot = slot, pid = pid, env = setmetatable({}, ENV_MT), start = start_info }
  PROCS[slot] = rec
  COS[slot] = co
  BYPID[pid] = rec
end

local spawn_c = H.spawn

local function spawn_with(flags, id, host, ...)
  if type(id) ~= "string" or type(host) ~= "string" then
    return invalid("spawn requires a process id and a host")
  end
  local def, kind, msg = get_def(id)
  if def == nil then return nil, new_error(kind, msg) end
  local n = select("#", ...)
  local info = { def, ... }
  info.n = n + 1
  for i = 2, n + 1 do
    local a = info[i]
    if type(a) == "table" or type(a) == "function" or type(a) == "userdata" or type(a) == "thread" then
      local ok, c = pcall(copy, a, 0)
      if not ok then return invalid(c) end
      info[i] = c
    end
  end
  local co = co_create(ENTRY)
  local slot, pid, emsg = spawn_c(id, host, flags, co)
  if slot == nil then return nil, new_error(pid, emsg) end
  if slot >= 0 then
    start(slot, pid, info, co)
    wake(slot)
    return pid
  end
  return herr(H.spawn_remote(-slot - 1, pid, id, flags, tunpack(info, 2, n + 1)))
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

local send_slow

-- Topics already checked (a string not starting with "@"), so that the send
-- fast path skips two C calls. Bounded: cleared when it grows large.
local TOPIC_OK, topic_count = {}, 0
local function check_topic(topic)
  if type(topic) ~= "string" or topic == "" or sbyte(topic, 1) == 64 then return false end
  if topic_count >= 4096 then
    TOPIC_OK, topic_count = {}, 0
  end
  TOPIC_OK[topic] = true
  topic_count = topic_count + 1
  return true
end

-- Fast path: a local PID, a string topic and one scalar payload.
-- Fast path: a PID of this worker, a string topic and one scalar payload
-- (a trailing nil argument counts as no argument).
function process.send(dest, topic, ...)
  local rec = BYPID[dest]
  local data, more = ...
  if rec ~= nil and more == nil and (TOPIC_OK[topic] or check_topic(topic)) then
    local td = type(data)
    if td ~= "table" and td ~= "function" and td ~= "userdata" and td ~= "thread" then
      local me = PROCS[CUR[1]] or current()
      local subs = rec.subs
      if subs == nil or subs[topic] == nil then
        local ch = rec.inbox
        local msg = setmetatable({ topic, me.pid, data }, MSG)
        if ch == nil then ch = inbox_of(rec) end
        local r = ch.w1
        if r ~= nil then
          ch.w1 = nil
          if not r.dead then wake(r.slot) end
        end
        if r ~= nil or (ch.rq == nil and ch.sq == nil) then
          -- nobody else waits in a select: straight into the buffer
          put(ch, msg)
        else
          try_send(ch, msg)
        end
        return true
      end
      deliver(rec, topic, me.pid, data)
      return true
    end
  end
  return send_slow(dest, topic, ...)
end

send_slow = function(dest, topic, ...)
  if type(topic) ~= "string" then
    return invalid("send requires at least destination and topic arguments")
  end
  if topic == "" then return invalid("topic cannot be empty") end
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

-- A channel of the calling process that receives what arrives on `topic`.
local function subscribe(topic, message)
  local rec = current()
  local subs = rec.subs
  if subs == nil then
    subs = {}
    rec.subs = subs
  end
  local sub = { ch = new_channel(INF), message = message }
  subs[topic] = sub
  return sub.ch
end

function process.listen(topic, opts)
  if type(topic) ~= "string" or topic == "" then error("topic cannot be empty", 2) end
  if sfind(topic, "@", 1, true) == 1 then error("cannot listen to @ topics", 2) end
  return subscribe(topic, type(opts) == "table" and opts.message == true)
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
  repeat co_yield(BLOCK) until w.done
  execs[pid] = nil
  local result = w.value.result
  if result.error ~= nil then return nil, new_error("INTERNAL", result.error) end
  return result.value
end

-- Host calls answered later (K.await, defined with the kernel table below).
local await_host

-- Registry: names live in Rust so every worker sees them.
local registry = { LOCAL = 0, EVENTUAL = 1, CONSISTENT = 2, STRONG = 3 }
function registry.register(name, pid, scope)
  if type(name) ~= "string" or name == "" then return invalid("name must be a non-empty string") end
  if pid ~= nil and type(pid) ~= "string" then return invalid("pid must be a string") end
  if scope ~= nil and mtype(scope) ~= "integer" then
    return invalid("scope must be a number (process.registry.LOCAL|EVENTUAL|CONSISTENT|STRONG)")
  end
  if scope ~= nil and scope ~= registry.LOCAL then
    return await_host(H.name_call, current().slot, "register", name, pid, scope)
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
  if scope ~= nil and scope ~= registry.LOCAL then
    return await_host(H.name_call, current().slot, "unregister", name, nil, scope)
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
  if ms == nil then return nil, new_error("INVALID", err) end
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
    local ch, err = after(d)
    if ch == nil then return nil, err end
    ch:receive()
    return true
  end,
  now = function() return setmetatable({ ns = H.wall_ns() }, TIME) end,
  monotonic = function() return now_ms() end,
}

---------------------------------------------------------------------------
-- entry points called by the Rust worker loop
---------------------------------------------------------------------------
local K = {}

K.PROCS = PROCS
K.COS = COS
K.CUR = CUR

-- Starts a process another worker (or the node) placed here.
K.spawn_order = function(slot, pid, id, args)
  local def, kind, msg = get_def(id)
  if def == nil then return nil, msg end
  local n = args.n or #args
  local info = { def, tunpack(args, 1, n) }
  info.n = n + 1
  local co = co_create(ENTRY)
  start(slot, pid, info, co)
  return co
end
-- A process returned `res`: forget it and record the result.
K.done = function(slot, res)
  local rec = PROCS[slot]
  if rec ~= nil then reap(rec) end
  if type(res) == "table" then
    exit_table(slot, true, res)
  else
    exit_c(slot, true, res)
  end
end

-- The message and traceback of a process that died with error `e`.
K.fail = function(slot, e)
  if type(e) == "table" and type(rawget(e, "message")) == "string" then e = e.message end
  local msg = tostring(e)
  local co = COS[slot]
  if co == nil then return msg end
  -- the kernel's own frames say nothing to the author of the process
  local tb = sgsub(traceback(co, msg), "\n\t%[?C?%]?:? ?kernel:[^\n]*", "")
  return (sgsub(tb, "\n\t%(%.%.%.tail calls%.%.%.%)", ""))
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
K.event = function(slot, kind, from, value, err, reason, at)
  local rec = PROCS[slot]
  if rec == nil or rec.dead then return end
  local ev = { kind = kind, from = from, at = at }
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

---------------------------------------------------------------------------
-- host calls answered later (replicated stores, Raft-backed names)
---------------------------------------------------------------------------
-- The caller's process waits on a one-slot channel; the engine runs the
-- call elsewhere and answers through K.reply on this worker, so the worker
-- keeps running other processes meanwhile.
local REPLIES = {}                          -- call id -> channel
local next_call = 0

function await_host(call, ...)
  next_call = next_call + 1
  local id = next_call
  local ok, kind, message = call(id, ...)
  if ok == nil then return nil, new_error(kind, message) end
  local ch = new_channel(1)
  REPLIES[id] = ch
  local r = ch:receive()
  if r[2] ~= nil then return nil, new_error(r[2], r[3]) end
  return r[1]
end

-- The slot of the calling process (for host calls made on its behalf).
function K.slot() return current().slot end

-- A channel for the engine's messages on an internal (`@`) topic, such as
-- a process group's events; closed again with process.unlisten.
function K.subscribe(topic) return subscribe(topic, false) end

K.await = await_host

K.reply = function(id, value, kind, message)
  local ch = REPLIES[id]
  if ch ~= nil then
    REPLIES[id] = nil
    if not ch.closed then try_send(ch, { value, kind, message }) end
  end
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

-- Coroutines created by user code. A kernel yield (BLOCK/KILL) or a
-- preemption inside a nested coroutine must reach the scheduler, not the
-- user's resume, so the user-facing resume forwards those and continues.
-- CO2REC holds only such nested coroutines; a process's own coroutine is
-- never in it, which is how `yield` tells the two apart.
local ucoroutine = {}
local function forward(co, ok, ...)
  if ok then
    local n = select("#", ...)
    local first = ...
    if n == 1 and (rawequal(first, BLOCK) or rawequal(first, KILL)) then
      co_yield(first)
      H.set_running(co)
      return forward(co, co_resume(co))
    elseif n == 0 and H.take_preempted() then
      co_yield()
      H.set_running(co)
      return forward(co, co_resume(co))
    end
  end
  return ok, ...
end

function ucoroutine.create(f)
  local co = co_create(f)
  local rec = PROCS[CUR[1]]
  if rec then CO2REC[co] = rec end
  return co
end
local function finish(...)
  H.set_running(co_running())
  return ...
end
function ucoroutine.resume(co, ...)
  if CO2REC[co] == nil then return co_resume(co, ...) end
  H.set_running(co)
  return finish(forward(co, co_resume(co, ...)))
end
function ucoroutine.wrap(f)
  local co = ucoroutine.create(f)
  local function unwrap(ok, ...)
    if not ok then error((...), 0) end
    return ...
  end
  return function(...)
    return unwrap(ucoroutine.resume(co, ...))
  end
end
function ucoroutine.yield(...)
  if CO2REC[co_running()] == nil then error("attempt to yield from outside a coroutine", 2) end
  return co_yield(...)
end
function ucoroutine.running()
  local co, main = co_running()
  if CO2REC[co] == nil then return co, true end
  return co, main
end
function ucoroutine.isyieldable()
  if CO2REC[co_running()] == nil then return false end
  return co_isyieldable()
end
ucoroutine.status = co_status
ucoroutine.close = co_close
K.coroutine = ucoroutine

return K
