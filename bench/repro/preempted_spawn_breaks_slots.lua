-- Status: reproduces on ba3f718; fixed by 3ce4ecd ("Kernel code is never
-- preempted"), where it prints "ok". Kept as a regression check.
--
-- Repro: a process preempted inside process.spawn can start its child in the
-- wrong scheduler slot; the child then fails with
--   "kernel:NNN: attempt to index a nil value (local 'rec')"
-- (or another process's record is resumed, and something hangs).
--
--   wippy run preempted_spawn_breaks_slots.lua --set scheduler.workers=1
--     -> "child failed: ... attempt to index a nil value (local 'rec')"
--   same with --set scheduler.time_slice=10s -> "ok" (no preemption)
--
-- Why: spawn_with() in kernel.lua calls H.place (which picks the next free
-- slot and remembers the PID in `pending`) and later H.started. The hook can
-- preempt the parent between the two; the children already spawned then run
-- and exit, freeing slots, so Rust inserts the new process at a different slot
-- than the one its Lua record was filed under (debug_assert only).
-- The body is the chunk itself, not a `main` function: at ba3f718
-- `wippy run` never called a script's `main`.
local role = ...
if role == "child" then return end
local n = 200000
local events = process.events()
for _ = 1, n do
  local pid, err = process.spawn_monitored("app:main", "app:processes", "child")
  if not pid then print("spawn failed: " .. tostring(err)) return end
end
for _ = 1, n do
  local ev = events:receive()
  if ev.result.error ~= nil then print("child failed: " .. ev.result.error) return end
end
print("ok: " .. n .. " children exited cleanly")
