-- Sees CANCEL but does not stop: the shutdown timeout must end it.
local function main()
    local events = process.events()
    print("stubborn started")
    while true do
        local ev = events:receive()
        if ev.kind == process.event.CANCEL then
            print("stubborn ignores CANCEL")
        end
    end
end

return { main = main }
