-- Builds the environment every process sees.
--
-- Each process gets its own empty `_ENV` whose metatable points here, so
-- globals a process sets stay its own. Library tables are read-only proxies:
-- one process cannot change `string.format` under another.
local K, extra = ...

local setmetatable, rawget, error, next, type = setmetatable, rawget, error, next, type

local FROZEN = setmetatable({}, { __mode = "k" })

local function frozen(name, real)
  local proxy = {}
  FROZEN[proxy] = name
  return setmetatable(proxy, {
    __index = real,
    __newindex = function() error(name .. " is read-only", 2) end,
    __pairs = function() return next, real, nil end,
    __len = function() return #real end,
    __metatable = false,
  })
end

-- The string metatable is shared by every string; hide it so that no
-- process can reach the real `string` table through ("").
local smt = getmetatable("")
smt.__metatable = false

K.modules.process.registry = frozen("process.registry", K.modules.process.registry)

local safe_os = {
  time = os.time, clock = os.clock, date = os.date, difftime = os.difftime,
}

local modules = {
  time = frozen("time", K.modules.time),
  json = frozen("json", extra.json),
  logger = extra.logger,
  system = extra.system,
  store = frozen("store", extra.store),
  pg = frozen("pg", extra.pg),
}

local function require_(name)
  local m = modules[name]
  if m == nil then error("module '" .. tostring(name) .. "' not found", 2) end
  return m
end

local tostring, select, concat, write = tostring, select, table.concat, extra.write
local function print_(...)
  local n = select("#", ...)
  if n == 1 then return write(tostring((...))) end
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  write(concat(parts, "\t"))
end

-- rawset would write into a shared proxy and so reach every process.
local raw_set = rawset
local function rawset_(t, k, v)
  local name = FROZEN[t]
  if name ~= nil then error(name .. " is read-only", 2) end
  return raw_set(t, k, v)
end

local std = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = pcall, xpcall = xpcall, select = select, tonumber = tonumber,
  tostring = tostring, type = type, rawequal = rawequal, rawget = rawget,
  rawset = rawset_, rawlen = rawlen, setmetatable = setmetatable,
  getmetatable = getmetatable, unpack = table.unpack, _VERSION = _VERSION,
  print = print_,
  require = require_,
  string = frozen("string", string),
  table = frozen("table", table),
  math = frozen("math", math),
  utf8 = frozen("utf8", utf8),
  os = frozen("os", safe_os),
  coroutine = frozen("coroutine", K.coroutine),
  process = frozen("process", K.modules.process),
  channel = frozen("channel", K.modules.channel),
  errors = frozen("errors", K.KINDS),
}
std._G = nil

local ENV_MT = { __index = std }
K.set_env_mt(ENV_MT)
return std
