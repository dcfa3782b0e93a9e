local system = require("system")

local function main()
    print("Hello from wippy! I am process " .. process.pid() .. " on node " .. system.node.id())
    -- Shut the node down gracefully; `wippy run` exits with this code.
    system.exit(0)
end

return { main = main }
