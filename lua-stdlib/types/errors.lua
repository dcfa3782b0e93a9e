---@meta
-- LuaLS annotations for the wippy `errors` global (no require needed).
-- See docs/lua/errors.md.
--
-- Convention used by every wippy call that can fail: on success it returns its
-- value(s); on failure it returns `nil` (or `false` where the doc says so) and an
-- Error as the LAST documented return value. Bad arguments never crash the node;
-- they come back as an Error of kind `errors.INVALID`.

---The error kinds a wippy call can report.
---Compare against the `errors.*` constants, not against string literals.
---@alias ErrorKind
---| "INVALID"           # bad arguments or a request that can never succeed as written
---| "NOT_FOUND"         # unknown name, entry, key, scope or store
---| "ALREADY_EXISTS"    # name taken, lock held, key already present
---| "PERMISSION_DENIED" # the caller may not do this
---| "UNAVAILABLE"       # the service is not running or has no quorum/leader right now; retry later
---| "TIMEOUT"           # a deadline passed before the operation completed
---| "INTERNAL"          # a failure that came from elsewhere (e.g. the child of process.exec failed)

---An error value returned by a wippy call.
---`tostring(err)` returns `err.message`.
---@class Error
---@field kind ErrorKind One of the `errors.*` constants.
---@field message string Human-readable text; also what `tostring(err)` returns.

---The `errors` global: the table of error kinds.
---@class errorslib
---@field INVALID "INVALID" Bad argument, malformed PID, reserved topic, unsupported option.
---@field NOT_FOUND "NOT_FOUND" Name not registered, unknown entry id, missing key.
---@field ALREADY_EXISTS "ALREADY_EXISTS" Name already taken, lock already held, key present.
---@field PERMISSION_DENIED "PERMISSION_DENIED" The caller is not allowed to perform the call.
---@field UNAVAILABLE "UNAVAILABLE" Feature not running (e.g. cluster disabled), no leader or no quorum. Retryable.
---@field TIMEOUT "TIMEOUT" A deadline expired (e.g. a STRONG name registration). Retryable.
---@field INTERNAL "INTERNAL" A failure that came from elsewhere, e.g. the child of process.exec failed.
errors = {}
