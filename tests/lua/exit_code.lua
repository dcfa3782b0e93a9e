-- system.exit(code) shuts the node down with that exit code.
local system = require("system")
print("exiting with 3")
system.exit(3)
