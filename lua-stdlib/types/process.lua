---@meta
-- LuaLS annotations for the wippy `process` global (no require needed).
-- See docs/lua/process.md and docs/lua/registry.md.

---A process identifier in its string form, e.g. `"{n1@app:processes|0x0002a}"`:
---node id, `@`, the `process.host` entry id, `|`, and a per-node counter written
---as `0x` plus at least five lowercase hex digits. Unique over the node's life and
---routable from every node of the cluster.
---@alias PID string

---Where a message or control call goes: a PID string, or a name registered in
---`process.registry` (cluster names are tried first, then eventual, then local).
---@alias Destination PID|string

---Event kinds delivered on `process.events()`.
---@alias ProcessEventKind
---| "pid.cancel"    # process.event.CANCEL: someone asked this process to stop
---| "pid.exit"      # process.event.EXIT: a monitored process ended (any exit)
---| "pid.link.down" # process.event.LINK_DOWN: a linked process failed (only seen with trap_links)

---How a process ended.
---@class ProcessResult
---@field value any The first value the process function returned (nil on error).
---@field error? string Set when the process failed: error text with a Lua traceback, "linked process failed", "node disconnected", or a termination reason.

---A lifecycle event, as received from `process.events()`.
---@class ProcessEvent
---@field kind ProcessEventKind
---@field from PID The process the event is about (the one that exited, or the canceller).
---@field at integer When the event was produced, Unix time in milliseconds.
---@field result? ProcessResult For EXIT and LINK_DOWN.
---@field reason? string For CANCEL: the reason given to `process.cancel`, or "name revoked: <name>".

---Payload wrapper of a Message.
---@class Payload
local Payload = {}

---The payload value: the single value that was sent, or an array table when the
---sender passed several payload arguments.
---@return any
function Payload:data() end

---A message received from `process.inbox()` or from `process.listen(topic, {message = true})`.
---@class Message
local Message = {}

---@return string topic The topic the sender used.
function Message:topic() end

---@return PID|"" from The sender's PID ("" when the sender is the runtime itself).
function Message:from() end

---@return Payload
function Message:payload() end

---Per-process options.
---@class ProcessOptions
---@field trap_links? boolean When true, LINK_DOWN arrives on `process.events()` instead of killing this process. Default false.

---@class ListenOptions
---@field message? boolean When true the channel yields Message objects; default false yields the payload value itself.


---Name scope numbers for `process.registry`.
---@alias RegistryScope
---| 0 # LOCAL: this node only, no coordination
---| 1 # EVENTUAL: cluster-wide, gossip, converges (cluster)
---| 2 # CONSISTENT: cluster-wide, Raft, first write wins (cluster)
---| 3 # STRONG: CONSISTENT + every live node acknowledges before the name is active (cluster)


---The `process` global.
---@class processlib
process = {}

---Event kind constants (read-only).
---@class process.event
---@field CANCEL "pid.cancel"
---@field EXIT "pid.exit"
---@field LINK_DOWN "pid.link.down"
process.event = {}

---Process names. See docs/lua/registry.md.
---@class process.registry
---@field LOCAL 0 Node-local name (default). Released when the process exits.
---@field EVENTUAL 1 Cluster-wide, eventually consistent (replicated over the mesh). This node only without cluster.enabled.
---@field CONSISTENT 2 Cluster-wide, linearizable, first write wins (Raft). Needs cluster.enabled.
---@field STRONG 3 CONSISTENT plus acknowledgement by every live node. Needs cluster.enabled.
process.registry = {}

-- ---------------------------------------------------------------------------
-- Identity
-- ---------------------------------------------------------------------------

---This process's PID string, e.g. `"{n1@app:processes|0x00001}"`.
---@return PID
function process.pid() end

-- ---------------------------------------------------------------------------
-- Spawning
-- ---------------------------------------------------------------------------

---Start a new process from a `process.lua` entry on a local `process.host`.
---The extra arguments are copied and passed to the process function.
---Errors: INVALID (bad/missing id or host, value that cannot be copied),
---NOT_FOUND (unknown entry or host).
---@param id string Process entry id, "namespace:name" (e.g. "app:worker").
---@param host string Host entry id (e.g. "app:processes").
---@param ... any Arguments for the process function (copied).
---@return PID|nil pid
---@return Error? err
function process.spawn(id, host, ...) end

---Like `process.spawn`, and the caller monitors the child: it gets an EXIT event
---on `process.events()` whenever the child ends, normally or not.
---@param id string
---@param host string
---@param ... any
---@return PID|nil pid
---@return Error? err
function process.spawn_monitored(id, host, ...) end

---Like `process.spawn`, and caller and child are linked: if either fails the
---other gets LINK_DOWN (which kills it unless it set `trap_links`).
---@param id string
---@param host string
---@param ... any
---@return PID|nil pid
---@return Error? err
function process.spawn_linked(id, host, ...) end

---Spawn, link and monitor in one step.
---@param id string
---@param host string
---@param ... any
---@return PID|nil pid
---@return Error? err
function process.spawn_linked_monitored(id, host, ...) end

---Run a process to completion and return what its function returned.
---Suspends only the caller. If the child fails, returns `nil, err` where
---`tostring(err)` holds the child's error text and traceback.
---@param id string
---@param host string
---@param ... any
---@return any result
---@return Error? err
function process.exec(id, host, ...) end

-- ---------------------------------------------------------------------------
-- Messaging
-- ---------------------------------------------------------------------------

---Send a message. Asynchronous, values copied, FIFO per sender→receiver pair.
---One payload argument is delivered as that value; several are delivered as an
---array table. Sending to a PID that has exited is NOT an error (returns true).
---Errors: NOT_FOUND (unknown name), INVALID (topic empty or starting with "@",
---malformed PID, value that cannot be copied).
---@param dest Destination PID string or registered name.
---@param topic string Must not be empty or start with "@".
---@param ... any Payload values (copied).
---@return true|nil ok
---@return Error? err
function process.send(dest, topic, ...) end

---The inbox: a channel of Message objects for every topic this process does not
---`listen` to. Messages wait in the mailbox until received.
---@return Channel inbox Channel of `Message`.
function process.inbox() end

---A channel of lifecycle events (`ProcessEvent` tables): CANCEL, EXIT, and
---LINK_DOWN when `trap_links` is set.
---@return Channel events Channel of `ProcessEvent`.
function process.events() end

---Subscribe to one topic. Messages on that topic go to the returned channel
---instead of the inbox. By default the channel yields payload values; with
---`{message = true}` it yields Message objects.
---Errors: INVALID (empty topic, topic starting with "@").
---@param topic string
---@param opts? ListenOptions
---@return Channel|nil ch
---@return Error? err
function process.listen(topic, opts) end

---Drop a subscription made with `process.listen`. Later messages on that topic
---go to the inbox again.
---@param ch Channel The channel returned by `process.listen`.
---@return true|nil ok
---@return Error? err
function process.unlisten(ch) end

-- ---------------------------------------------------------------------------
-- Control, monitors, links
-- ---------------------------------------------------------------------------

---Kill a process at once. Its monitors get EXIT and its links LINK_DOWN, both
---with `result.error` set. Errors: NOT_FOUND (unknown name), INVALID.
---@param dest Destination
---@return true|nil ok
---@return Error? err
function process.terminate(dest) end

---Ask a process to stop: it receives a CANCEL event carrying `reason` and
---decides itself how to wind down. Errors: NOT_FOUND (unknown name), INVALID.
---@param dest Destination
---@param reason? string Delivered as `event.reason`.
---@return true|nil ok
---@return Error? err
function process.cancel(dest, reason) end

---Watch a process: when it ends, for any reason, this process gets an EXIT
---event. A watched process on a node that goes down produces an event whose
---`result.error` is "node disconnected". Works across nodes (cluster).
---@param dest Destination
---@return true|nil ok
---@return Error? err
function process.monitor(dest) end

---Stop watching a process.
---@param dest Destination
---@return true|nil ok
---@return Error? err
function process.unmonitor(dest) end

---Link with a process (both directions). If either side fails (error,
---terminate, lost node), the other gets LINK_DOWN; a normal return propagates
---nothing. Without `trap_links`, LINK_DOWN ends the receiver with
---"linked process failed".
---@param dest Destination
---@return true|nil ok
---@return Error? err
function process.link(dest) end

---Remove a link (both directions).
---@param dest Destination
---@return true|nil ok
---@return Error? err
function process.unlink(dest) end

---Change this process's options. Only `trap_links` is supported.
---Errors: INVALID (not a table, unknown option, non-boolean trap_links).
---@param opts ProcessOptions
---@return boolean ok `true`, or `false` with an error.
---@return Error? err
function process.set_options(opts) end

---This process's current options.
---@return ProcessOptions opts Always has `trap_links`.
function process.get_options() end

-- ---------------------------------------------------------------------------
-- process.registry
-- ---------------------------------------------------------------------------

---Register `name` for `pid` (default: the caller) in `scope` (default LOCAL).
---Registering the same name for the same PID again succeeds.
---Errors: ALREADY_EXISTS (taken, or held in another scope), INVALID (bad pid or
---scope, or a PID of another node for a cluster scope), UNAVAILABLE
---(CONSISTENT/STRONG without cluster.enabled, no leader/quorum), TIMEOUT (STRONG:
---some live node did not acknowledge within 10 s; the message names them).
---CONSISTENT and STRONG need cluster.enabled; without it an EVENTUAL name is
---visible on this node only. STRONG blocks the caller until all live nodes
---acknowledge or the deadline passes. An EVENTUAL name that loses a conflict to
---an earlier registration elsewhere is dropped, and its process gets a CANCEL
---event with reason "name revoked: <name>".
---@param name string
---@param pid? PID Defaults to `process.pid()`.
---@param scope? RegistryScope Defaults to `process.registry.LOCAL`.
---@return true|nil ok
---@return Error? err
function process.registry.register(name, pid, scope) end

---Resolve a name. Looks in the cluster (CONSISTENT/STRONG) names first, then
---EVENTUAL, then LOCAL; the first hit wins.
---Errors: NOT_FOUND ("name not registered").
---@param name string
---@return PID|nil pid
---@return Error? err
function process.registry.lookup(name) end

---Remove a name. `scope` must be the scope it was registered in (default LOCAL).
---Returns false (and no error) when the name is absent, or, for CONSISTENT and
---STRONG, owned by another process.
---@param name string
---@param scope? RegistryScope Defaults to `process.registry.LOCAL`.
---@return boolean|nil removed
---@return Error? err
function process.registry.unregister(name, scope) end
