-- `system.lock`: cluster-wide locks through the Raft core. The call waits
-- in K.await while the engine serves it; other processes keep running.
local K, H = ...

local type, await, new_error = type, K.await, K.new_error

-- Locks are fail-fast by default; `wait` is capped so a forgotten deadline
-- cannot park a process for hours.
local MAX_WAIT_MS = 10 * 60 * 1000

local function check_name(name)
  if type(name) ~= "string" or name == "" or #name > 1024 then
    return new_error("INVALID", "lock name must be a non-empty string of at most 1024 bytes")
  end
end

local lock = {}

-- acquire(name [, {wait = duration}]) → true, nil, token | false, err | nil, err
function lock.acquire(name, opts)
  local bad = check_name(name)
  if bad then return nil, bad end
  local wait_ms = 0
  if opts ~= nil then
    if type(opts) ~= "table" then return nil, new_error("INVALID", "lock options must be a table") end
    if opts.wait ~= nil then
      wait_ms = H.duration_ms(opts.wait)
      if wait_ms == nil or wait_ms < 0 then
        return nil, new_error("INVALID", "wait must be a duration (\"5s\", or milliseconds)")
      end
      if wait_ms > MAX_WAIT_MS then wait_ms = MAX_WAIT_MS end
    end
  end
  local token, err = await(H.lock_call, K.slot(), "acquire", name, wait_ms)
  if token == nil then
    if err.kind == "ALREADY_EXISTS" then return false, err end
    return nil, err
  end
  return true, nil, token
end

-- release(name) → true | false (not held by the caller) | nil, err
function lock.release(name)
  local bad = check_name(name)
  if bad then return nil, bad end
  local ok, err = await(H.lock_call, K.slot(), "release", name)
  if ok == nil then return nil, err end
  return ok
end

return lock
