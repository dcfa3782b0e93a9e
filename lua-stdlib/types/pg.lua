---@meta pg
-- LuaLS annotations for `local pg = require("pg")`.
-- See docs/lua/pg.md.
--
-- Process groups in the style of Erlang's `pg`, inside a `pg.scope` entry.
-- On a single node groups are node-local; with `cluster.enabled: true` the same
-- scope id on every node forms one cluster-wide, eventually consistent view.

---Membership change inside a scope.
---@class PgEventData
---@field Group string The group name.
---@field PIDs PID[] The processes that joined or left.

---An event delivered on a `PgSubscription` channel.
---@class PgEvent
---@field system "pg"
---@field kind "member.joined"|"member.left"
---@field path string The group name.
---@field data PgEventData

---A subscription created by `g:monitor(name)` or `g:events()`.
---@class PgSubscription
local PgSubscription = {}

---The channel the subscription's `PgEvent` tables arrive on.
---@return Channel
function PgSubscription:channel() end

---Stop the subscription.
---@param opts? {flush?: boolean} `flush = true` delivers events already queued before closing.
---@return true
function PgSubscription:close(opts) end

---An opened scope. Released automatically when the calling process exits.
---@class PgInstance
local PgInstance = {}

---Join one group, or several at once. A process may join the same group more
---than once; it stays a member until it has left as many times.
---Errors: INVALID (missing/empty name, instance released).
---@param names string|string[]
---@return true|nil ok
---@return Error? err
function PgInstance:join(names) end

---Leave one group or several. Errors only when the caller was a member of none
---of them (INVALID).
---@param names string|string[]
---@return true|nil ok
---@return Error? err
function PgInstance:leave(names) end

---Members of a group across the cluster (an empty array for an unknown group).
---@param name string
---@return PID[]|nil members
---@return Error? err
function PgInstance:get_members(name) end

---Members of a group that run on this node.
---@param name string
---@return PID[]|nil members
---@return Error? err
function PgInstance:get_local_members(name) end

---Names of all groups that have at least one member.
---@return string[]|nil names
---@return Error? err
function PgInstance:which_groups() end

---Names of groups that have at least one member on this node.
---@return string[]|nil names
---@return Error? err
function PgInstance:which_local_groups() end

---Send `topic` with the payload to every member, on every node. Members receive
---an ordinary message from the caller's PID (inbox, or `process.listen(topic)`).
---Best effort: a member on an unreachable node misses it.
---@param name string
---@param topic string
---@param ... any Payload values (copied), as in `process.send`.
---@return true|nil ok
---@return Error? err
function PgInstance:broadcast(name, topic, ...) end

---Like `broadcast`, limited to members on this node.
---@param name string
---@param topic string
---@param ... any
---@return true|nil ok
---@return Error? err
function PgInstance:broadcast_local(name, topic, ...) end

---Subscribe to joins/leaves of one group. The member snapshot and the
---subscription are taken atomically: every later change arrives as an event.
---@param name string
---@return PgSubscription|nil sub
---@return PID[]|nil members Members at subscription time.
---@return Error? err
function PgInstance:monitor(name) end

---Subscribe to joins/leaves of every group in the scope, with an atomic
---snapshot `{ [group] = {pid, ...} }`.
---@return PgSubscription|nil sub
---@return table<string, PID[]>|nil snapshot
---@return Error? err
function PgInstance:events() end

---Release the instance early (idempotent). Afterwards every method returns an
---INVALID error.
---@return boolean
function PgInstance:release() end

---The `pg` module.
---@class pglib
local pg = {}

---Open a `pg.scope` entry.
---Errors: NOT_FOUND (no such scope), INVALID (missing id).
---@param scope_id string Entry id, e.g. "app:pg".
---@return PgInstance|nil g
---@return Error? err
function pg.open(scope_id) end

return pg
