-- Top-level code is the process body in FILE.lua mode.
local time = require("time")
print("hello from", process.pid())
print("several", "values", 42, nil, true)
time.sleep(10)
print("bye")
