---@meta logger
-- LuaLS annotations for `local logger = require("logger")`.
-- See docs/lua/time-json-logger.md.
--
-- Log records go to the node's structured log (stderr; `logger.encoding:
-- json|console` in wippy.yaml), tagged with the calling process's PID.
-- `print(...)` is different: it writes one plain line to stdout.

---Extra structured fields for one record (key → copyable value).
---@alias LogFields table<string, any>

---@class Logger
local Logger = {}

---@param msg string
---@param fields? LogFields
function Logger:debug(msg, fields) end

---@param msg string
---@param fields? LogFields
function Logger:info(msg, fields) end

---@param msg string
---@param fields? LogFields
function Logger:warn(msg, fields) end

---@param msg string
---@param fields? LogFields
function Logger:error(msg, fields) end

---@type Logger
local logger = {}

return logger
