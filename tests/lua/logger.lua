-- logger writes to the structured log on stderr, tagged with the PID; print
-- writes to stdout.
local logger = require("logger")
logger:info("hello from the logger", { answer = 42 })
logger:warn("a warning")
logger:error("an error", { reason = "testing" })
logger:debug("hidden at the default level")
print("pid " .. process.pid())
