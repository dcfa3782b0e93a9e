---@meta time
-- LuaLS annotations for `local time = require("time")`.
-- See docs/lua/time-json-logger.md.

---A duration: a number of milliseconds (`250`, `1.5`), or a string made of a
---number and a unit: `"250ms"`, `"2s"`, `"1m"`.
---A negative or unparsable duration is an INVALID error.
---@alias Duration number|string

---A point in wall-clock time, returned by `time.now()`.
---@class Time
local Time = {}

---Whole seconds since the Unix epoch.
---@return integer
function Time:unix() end

---Nanoseconds since the Unix epoch.
---@return integer
function Time:unix_nano() end

---`self - other`, in milliseconds (may be fractional; negative when `other` is later).
---@param other Time
---@return number ms
function Time:sub(other) end

---The `time` module.
---@class timelib
local time = {}

---Suspend the calling process for `d`. Other processes keep running.
---Errors: INVALID (bad duration).
---@param d Duration
---@return true|nil ok
---@return Error? err
function time.sleep(d) end

---A channel that delivers one value (the `Time` at which it fired) once `d`
---has passed. Use it as a timeout case in `channel.select`.
---Errors: INVALID (bad duration).
---@param d Duration
---@return Channel|nil ch
---@return Error? err
function time.after(d) end

---The current wall-clock time.
---@return Time
function time.now() end

---Milliseconds from a monotonic clock with an arbitrary origin. Only
---differences between two readings are meaningful; never goes backwards.
---@return number ms
function time.monotonic() end

return time
