-- An endless loop in one process does not stop the script from exiting.
local time = require("time")
local system = require("system")
-- one copy of this file becomes the spinner (it receives an argument)
if ... == "spin" then
    while true do end
end
assert(process.spawn("app:main", "app:processes", "spin"))
time.sleep(50)
print("still responsive")
system.exit(0)
