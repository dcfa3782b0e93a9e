---@meta store
-- LuaLS annotations for `local store = require("store")`.
-- See docs/lua/store.md.
--
-- Replicated key-value stores declared as `store.kv.raft` (linearizable) or
-- `store.kv.crdt` (eventual) entries. Both need `cluster.enabled: true` (a
-- one-node cluster is enough for development).

---A key with its value and version.
---@class StoreEntry
---@field key string
---@field value any
---@field version integer Per-key version; grows with every write of the key.

---Options for `s:list`.
---@class StoreListOptions
---@field prefix? string Only keys starting with this prefix.
---@field after? string Only keys strictly after this one (pass the previous `cursor`).
---@field limit? integer Maximum number of items in this page.

---One page of `s:list`, in key order.
---@class StoreListResult
---@field items StoreEntry[]
---@field cursor? string Pass as `after` to get the next page; nil when there are no more keys.
---@field has_more boolean More keys follow this page.

---Options for `s:put`. `only_if_absent` and `if_version` exclude each other.
---@class StorePutOptions
---@field ttl? Duration Expire the key after this long.
---@field only_if_absent? boolean Write only if the key does not exist (kv.raft only).
---@field if_version? integer Write only if the key exists at exactly this version (kv.raft only; a positive integer from `s:entry`).

---What `s:info()` returns.
---@class StoreInfo
---@field id string The store entry id.
---@field backend "kv.raft"|"kv.crdt"
---@field consistency "linearizable"|"eventual"
---@field conditional_put boolean True for kv.raft, false for kv.crdt.
---@field durable boolean
---@field ttl boolean Keys may carry a lifetime.
---@field list boolean `list` is supported.
---@field versioned boolean Entries carry versions.

---A store handle.
---@class Store
local Store = {}

---Read a value. kv.raft: linearizable read. kv.crdt: local replica.
---Errors: NOT_FOUND (no such key).
---@param key string
---@return any value
---@return Error? err
function Store:get(key) end

---Read a key together with its version (for `put{if_version=...}`).
---Errors: NOT_FOUND (no such key).
---@param key string
---@return StoreEntry|nil entry
---@return Error? err
function Store:entry(key) end

---Write a value unconditionally, optionally with a time to live.
---Values are copied (plain data only).
---@param key string
---@param value any
---@param ttl? Duration
---@return true|nil ok
---@return Error? err
function Store:set(key, value, ttl) end

---Whether the key exists.
---@param key string
---@return boolean|nil exists
---@return Error? err
function Store:has(key) end

---Delete a key. Returns true if it existed, false if not.
---@param key string
---@return boolean|nil deleted
---@return Error? err
function Store:delete(key) end

---List keys in order, one page at a time.
---@param opts? StoreListOptions
---@return StoreListResult|nil page
---@return Error? err
function Store:list(opts) end

---Write with a condition and get the new entry back.
---Errors: ALREADY_EXISTS (`only_if_absent` and the key exists, or `if_version`
---does not match the current version), NOT_FOUND (`if_version` and the key is
---absent), INVALID (both conditions given, or any condition on a kv.crdt store).
---@param key string
---@param value any
---@param opts? StorePutOptions
---@return StoreEntry|nil entry
---@return Error? err
function Store:put(key, value, opts) end

---Describe the store.
---@return StoreInfo
function Store:info() end

---Drop this handle early (also happens when the process exits).
---@return true
function Store:release() end

---The `store` module.
---@class storelib
local store = {}

---Open a store entry by id.
---Errors: NOT_FOUND (no such entry), UNAVAILABLE (cluster disabled).
---@param id string Entry id, e.g. "app:deployments".
---@return Store|nil s
---@return Error? err
function store.get(id) end

return store
