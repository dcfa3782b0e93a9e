-- Several processes on two workers print at once: every line stays whole,
-- and each process's lines stay in order.
local who = ...
if who then
    for i = 1, 300 do
        print(who, i, string.rep("=", 40))
    end
    return
end
for w = 1, 4 do
    -- exec would run them one by one; spawn + monitor runs them together
    assert(process.spawn_monitored("app:main", "app:processes", "p" .. w))
end
local events = process.events()
for _ = 1, 4 do
    local ev = events:receive()
    assert(ev.result.error == nil, ev.result.error)
end
