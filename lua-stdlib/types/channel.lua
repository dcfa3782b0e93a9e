---@meta
-- LuaLS annotations for the wippy `channel` global (no require needed).
-- See docs/lua/channel.md.
--
-- Channels live inside one process: they connect coroutines of that process and
-- the runtime's deliveries (inbox, events, listen, time.after, pg subscriptions).
-- They cannot be sent to another process. Blocking operations suspend only the
-- calling process, never the worker thread.

---A select case, produced by `ch:case_receive()` or `ch:case_send(v)`.
---Only meaningful as an element of the table passed to `channel.select`.
---@class SelectCase

---The table passed to `channel.select`: an array of cases, plus an optional
---`default = true` that makes the select return at once when no case is ready.
---@class SelectCases
---@field [integer] SelectCase
---@field default? boolean

---What `channel.select` returns.
---For a case that fired: `channel` is that case's channel, `value` the value
---received (or sent), `ok` is `false` only for a receive on a closed, drained channel.
---For the default branch: only `default = true` is set.
---@class SelectResult
---@field channel? Channel The channel whose case completed (nil for the default branch).
---@field value any Received value (receive case) or the value that was sent (send case).
---@field ok? boolean `false` when a receive case saw a closed and empty channel.
---@field default? true Present (true) only when the default branch was taken.

---A channel. Unbuffered (capacity 0) channels hand a value over only when a
---sender and a receiver meet; buffered channels accept sends until full.
---@class Channel
local Channel = {}

---Send a value. Blocks (suspending only this process) while the channel is
---full, or, for an unbuffered channel, until a receiver takes the value.
---Sending on a closed channel raises a Lua error.
---@param value any
---@return true
function Channel:send(value) end

---Receive a value. Blocks until one is available or the channel is closed.
---Returns `value, true` for a received value and `nil, false` once the channel
---is closed and all buffered values have been taken.
---@return any value
---@return boolean ok
function Channel:receive() end

---Close the channel. Buffered values can still be received; after them,
---receivers get `nil, false`. Pending and later senders get a Lua error.
---Closing an already closed channel does nothing.
function Channel:close() end

---A receive case for `channel.select`.
---@return SelectCase
function Channel:case_receive() end

---A send case for `channel.select`; it completes when the channel accepts `value`.
---@param value any
---@return SelectCase
function Channel:case_send(value) end

---The `channel` global.
---@class channellib
channel = {}

---Create a channel.
---@param capacity? integer Buffer size; 0 or omitted = unbuffered.
---@return Channel
function channel.new(capacity) end

---Wait until one of the cases can complete and perform exactly that one.
---With `default = true` in the table, return `{default = true}` immediately
---when no case is ready. When several cases are ready, any one of them may be
---chosen. Blocks only the calling process.
---
---```lua
---local r = channel.select{ inbox:case_receive(), time.after("1s"):case_receive() }
---```
---@param cases SelectCases
---@return SelectResult
function channel.select(cases) end
