---@meta json
-- LuaLS annotations for `local json = require("json")`.
-- See docs/lua/time-json-logger.md.

---The `json` module.
---@class jsonlib
local json = {}

---Encode a Lua value as JSON text.
---A table whose keys are exactly 1..n becomes an array; a table with string
---keys becomes an object; an empty table becomes `{}`.
---Errors: INVALID (functions, userdata, coroutines, cyclic tables, mixed or
---non-string keys, NaN/infinity).
---@param value any
---@return string|nil text
---@return Error? err
function json.encode(value) end

---Decode JSON text into Lua values (objects and arrays become tables, JSON
---`null` becomes `nil`; integers stay integers).
---Errors: INVALID (malformed JSON, with the position).
---@param text string
---@return any value
---@return Error? err
function json.decode(text) end

return json
