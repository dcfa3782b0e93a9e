-- Status: reproduces on ba3f718; fixed by 3ce4ecd ("Kernel code is never
-- preempted"), where it prints "ok". Kept as a regression check.
--
-- Repro: a message between two processes of ONE worker is lost (stuck in the
-- receiver's inbox buffer) when the sender is preempted inside process.send.
--
--   wippy run preempted_send_loses_message.lua --set scheduler.workers=1
--     -> "lost: expected message N, got N+1" within a second or two
--   same with --set scheduler.time_slice=10s -> "ok" (no preemption)
--
-- Why: the preemption hook can yield at any Lua instruction, including inside
-- the kernel's channel code (try_send/try_receive in kernel.lua). If the sender
-- is stopped after `local t = ch.t + 1` and before `ch.t = t`, the receiver
-- drains the buffer and resets h/t to 1/0 and blocks; the sender then resumes,
-- stores its message at the old index, and the next send completes the
-- receiver's waiter directly, so the buffered message is skipped.
-- The body is the chunk itself, not a `main` function: at ba3f718
-- `wippy run` never called a script's `main`.
local role, peer, n = ...
if role == "sink" then
  local inbox = process.inbox()
  for k = 1, n do
    local got = inbox:receive():payload():data()
    if got ~= k then return "lost: expected message " .. k .. ", got " .. tostring(got) end
  end
  return "ok: " .. n .. " messages in order"
elseif role == "sender" then
  for i = 1, n do process.send(peer, "m", i) end
  return
end
n = 20000000
local sink = process.spawn_monitored("app:main", "app:processes", "sink", "", n)
process.spawn("app:main", "app:processes", "sender", sink, n)
local ev = process.events():receive()
print(ev.result.value or ev.result.error)
