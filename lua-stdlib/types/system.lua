---@meta system
-- LuaLS annotations for `local system = require("system")`.
-- See docs/lua/system.md.
--
-- `system.exit` and `system.node.id/role` work on every node. Everything else
-- describes or uses the cluster and needs `cluster.enabled: true`; without it
-- the calls return the "not available" values documented on each function.

---Raft role of a node.
---@alias NodeRole
---| "leader"     # current Raft leader
---| "voter"      # voting Raft member
---| "standby"    # non-voting, fully replicated Raft member
---| "non-member" # not in the Raft configuration (client node, or cluster disabled)

---Gossip state of a member.
---@alias MemberState "alive"|"suspect"|"dead"|"left"

---One cluster member, as seen by this node's gossip view.
---@class ClusterMember
---@field id string Node id (the node part of its PIDs).
---@field name string Configured node name.
---@field addr string Gossip address, "host:port".
---@field internode_addr string Mesh address, "host:port" ("" on a single node).
---@field state MemberState Only "alive" and "suspect" members are listed.
---@field role NodeRole
---@field failure_domain string "" when not configured.
---@field is_local boolean True for this node (always the first element).

---Options for `system.lock.acquire`.
---@class LockAcquireOptions
---@field wait? Duration Keep trying until this deadline instead of failing fast (e.g. "5s").

---The `system` module.
---@class systemlib
local system = {}

---Shut the node down gracefully with process exit code `code`: services get a
---CANCEL event, and whatever is still running after the shutdown timeout is
---terminated. Returns to the caller; the caller is cancelled like every other
---process. Meant for scripts and tests.
---@param code? integer Exit code, default 0.
---@return true
function system.exit(code) end

---@class system.node
system.node = {}

---This node's id: the same string that appears before `@` in its PIDs, and
---that gossip and Raft use.
---@return string
function system.node.id() end

---This node's advertised gossip address ("host:port").
---Needs cluster.enabled; otherwise `nil, err` (UNAVAILABLE).
---@return string|nil addr
---@return Error? err
function system.node.addr() end

---This node's Raft role. "non-member" on client nodes and when the cluster is
---disabled (never an error).
---@return NodeRole
function system.node.role() end

---@class system.cluster
system.cluster = {}

---All members this node currently knows, this node first.
---Needs cluster.enabled; otherwise `nil, err` (UNAVAILABLE).
---@return ClusterMember[]|nil members
---@return Error? err
function system.cluster.members() end

---Node id of the current Raft leader, or "" when there is none (election in
---progress, or cluster disabled). Never an error.
---@return string
function system.cluster.leader() end

---Number of members in this node's view (0 when the cluster is disabled).
---@return integer
function system.cluster.size() end

---@class system.raft
system.raft = {}

---Whether this node is the Raft leader.
---Needs a node that runs Raft (cluster.enabled, role server); otherwise
---`nil, err` with message "raft not available" (UNAVAILABLE).
---@return boolean|nil leader
---@return Error? err
function system.raft.is_leader() end

---Whether this node is in the Raft configuration (voter or standby).
---`nil, err` ("raft not available") where Raft does not run.
---@return boolean|nil member
---@return Error? err
function system.raft.is_member() end

---This node's Raft role. `nil, err` ("raft not available") where Raft does not run.
---@return NodeRole|nil role
---@return Error? err
function system.raft.role() end

---Current Raft term. `nil, err` ("raft not available") where Raft does not run.
---@return integer|nil term
---@return Error? err
function system.raft.term() end

---Index of the last committed log entry. `nil, err` ("raft not available")
---where Raft does not run.
---@return integer|nil index
---@return Error? err
function system.raft.commit_index() end

---Raw Raft statistics as a string→string table (for diagnostics; the set of
---keys is not stable). `nil, err` ("raft not available") where Raft does not run.
---@return table<string, string>|nil stats
---@return Error? err
function system.raft.stats() end

---@class system.lock
system.lock = {}

---Take the cluster-wide lock `name` for the calling process. Linearizable (one
---holder cluster-wide). Without `opts.wait` it never blocks. Released
---automatically when the holder process exits or its node leaves. Not
---re-entrant: acquiring a lock you already hold returns `false, err`.
---
---Returns:
--- * `true, nil, token` — acquired; `token` is a fencing token, larger than any
---   token handed out earlier for this lock. Pass it to the protected resource
---   so it can reject writes from a stale holder.
--- * `false, err` — held by another process (ALREADY_EXISTS, "lock held: <name>");
---   with `wait`, still held when the deadline passed.
--- * `nil, err` — could not decide (UNAVAILABLE: cluster disabled, no quorum;
---   INVALID: bad name or options).
---
---Needs cluster.enabled.
---@param name string
---@param opts? LockAcquireOptions
---@return boolean|nil ok
---@return Error? err
---@return integer? token
function system.lock.acquire(name, opts) end

---Release a lock held by the calling process.
---Returns `true` when released, `false` (no error) when the caller does not
---hold it, `nil, err` on failure (UNAVAILABLE). Needs cluster.enabled.
---@param name string
---@return boolean|nil released
---@return Error? err
function system.lock.release(name) end

return system
