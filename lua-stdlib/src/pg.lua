-- The `pg` module: process groups, modelled on Erlang's pg. A handle names
-- one `pg.scope` entry. Membership lives in the engine and is replicated to
-- every node; a broadcast is a plain send to each member, from the caller.
local K, H = ...

local setmetatable, getmetatable, type, ipairs, select = setmetatable, getmetatable, type, ipairs, select
local new_error, process = K.new_error, K.modules.process

local PG = {}
PG.__index = PG
PG.__name = "pg"
PG.__tostring = function(g) return "pg: " .. g.scope end

local SUB = {}
SUB.__index = SUB
SUB.__name = "pg.subscription"

local function invalid(message) return nil, new_error("INVALID", message) end

local function call(self, op, arg)
  if getmetatable(self) ~= PG then return invalid("pg methods are called with ':' (g:" .. op .. "(...))") end
  if self.released then return invalid("pg instance released: " .. self.scope) end
  local r, kind, message = H.pg_call(K.slot(), self.scope, op, arg)
  if r == nil then return nil, new_error(kind, message) end
  return r
end

-- A group name or an array of them, as a non-empty array.
local function groups(arg, what)
  if type(arg) == "string" then
    if arg == "" then return nil, "group name cannot be empty" end
    return { arg }
  end
  if type(arg) ~= "table" or #arg == 0 then return nil, what .. " takes a group name or an array of them" end
  for _, g in ipairs(arg) do
    if type(g) ~= "string" or g == "" then return nil, "group names must be non-empty strings" end
  end
  return arg
end

function PG:join(arg)
  local list, err = groups(arg, "join")
  if list == nil then return invalid(err) end
  return call(self, "join", list)
end

function PG:leave(arg)
  local list, err = groups(arg, "leave")
  if list == nil then return invalid(err) end
  return call(self, "leave", list)
end

local function group_arg(self, op, group)
  if type(group) ~= "string" or group == "" then return invalid(op .. " requires a group name") end
  return call(self, op, group)
end

function PG:get_members(group) return group_arg(self, "members", group) end
function PG:get_local_members(group) return group_arg(self, "local_members", group) end
function PG:which_groups() return call(self, "groups") end
function PG:which_local_groups() return call(self, "local_groups") end

-- Sends to each member once (a process that joined twice gets one copy).
local function broadcast(self, op, group, topic, ...)
  if type(topic) ~= "string" or topic == "" then return invalid("broadcast requires a topic") end
  local members, err = group_arg(self, op, group)
  if members == nil then return nil, err end
  local seen = {}
  local n = select("#", ...)
  for _, pid in ipairs(members) do
    if not seen[pid] then
      seen[pid] = true
      if n == 0 then process.send(pid, topic) else process.send(pid, topic, ...) end
    end
  end
  return true
end

function PG:broadcast(group, topic, ...) return broadcast(self, "members", group, topic, ...) end
function PG:broadcast_local(group, topic, ...) return broadcast(self, "local_members", group, topic, ...) end

local function watch(self, group)
  local r, err = call(self, "watch", group)
  if r == nil then return nil, nil, err end
  local ch = K.subscribe("@pg." .. r.id)
  local sub = setmetatable({ id = r.id, scope = self.scope, ch = ch }, SUB)
  self.subs[#self.subs + 1] = sub
  return sub, r.members
end

-- `sub, members`: the members now and every change from then on.
function PG:monitor(group)
  if type(group) ~= "string" or group == "" then return nil, nil, new_error("INVALID", "monitor requires a group name") end
  return watch(self, group)
end

-- `sub, {group = members}`: every group of the scope and every change.
function PG:events() return watch(self, nil) end

function PG:release()
  if getmetatable(self) ~= PG then return invalid("pg methods are called with ':' (g:release())") end
  if self.released then return true end
  for _, sub in ipairs(self.subs) do process.unlisten(sub.ch) end
  self.subs = {}
  local r, kind, message = H.pg_call(K.slot(), self.scope, "release")
  self.released = true
  if r == nil then return nil, new_error(kind, message) end
  return true
end

function SUB:channel() return self.ch end

function SUB:close()
  if self.closed then return true end
  self.closed = true
  H.pg_call(K.slot(), self.scope, "unwatch", self.id)
  process.unlisten(self.ch)
  return true
end

local pg = {}

-- `pg.open(scope_id)`: a handle on a declared `pg.scope` entry.
function pg.open(scope)
  if type(scope) ~= "string" or scope == "" then return invalid("pg.open requires a scope id") end
  local ok, kind, message = H.pg_call(K.slot(), scope, "open")
  if ok == nil then return nil, new_error(kind, message) end
  return setmetatable({ scope = scope, subs = {} }, PG)
end

return pg
