-- The `store` module: handles on the replicated stores an app declares
-- (`store.kv.raft`, `store.kv.crdt` entries). Calls that need the cluster
-- wait in K.await while the engine serves them; the worker goes on running
-- other processes.
local K, H = ...

local setmetatable, getmetatable, type, await = setmetatable, getmetatable, type, K.await
local new_error = K.new_error

local STORE = {}
STORE.__index = STORE
STORE.__name = "store"
STORE.__tostring = function(s) return "store: " .. s.id end

local function call(self, op, args)
  if getmetatable(self) ~= STORE then
    return nil, new_error("INVALID", "store methods are called with ':' (s:" .. op .. "(...))")
  end
  return await(H.store_call, self.id, op, args)
end

function STORE:get(key) return call(self, "get", { key = key }) end
function STORE:entry(key) return call(self, "entry", { key = key }) end
function STORE:has(key) return call(self, "has", { key = key }) end
function STORE:delete(key) return call(self, "delete", { key = key }) end
function STORE:set(key, value, ttl) return call(self, "set", { key = key, value = value, ttl = ttl }) end

function STORE:put(key, value, opts)
  if opts ~= nil and type(opts) ~= "table" then
    return nil, new_error("INVALID", "put options must be a table")
  end
  opts = opts or {}
  return call(self, "put", {
    key = key, value = value, ttl = opts.ttl,
    only_if_absent = opts.only_if_absent, if_version = opts.if_version,
  })
end

function STORE:list(opts)
  if opts ~= nil and type(opts) ~= "table" then
    return nil, new_error("INVALID", "list options must be a table")
  end
  opts = opts or {}
  return call(self, "list", { prefix = opts.prefix, after = opts.after, limit = opts.limit })
end

function STORE:info()
  local info, kind, message = H.store_info(self.id)
  if info == nil then return nil, new_error(kind, message) end
  info.id = self.id
  return info
end

-- Handles hold no resources; kept for code written against other backends.
function STORE:release() return true end

local store = {
  backend = { KV_RAFT = "kv.raft", KV_CRDT = "kv.crdt", UNKNOWN = "unknown" },
  consistency = { LINEARIZABLE = "linearizable", EVENTUAL = "eventual", LOCAL = "local", UNKNOWN = "unknown" },
}

-- `store.get(id)`: the handle of a declared store, or NOT_FOUND.
function store.get(id)
  if type(id) ~= "string" then return nil, new_error("INVALID", "store id must be a string") end
  local info, kind, message = H.store_info(id)
  if info == nil then return nil, new_error(kind, message) end
  return setmetatable({ id = id }, STORE)
end

return store
