local function main()
    local events = process.events()
    print("svc started " .. process.pid())
    while true do
        local ev = events:receive()
        if ev.kind == process.event.CANCEL then
            print("svc got CANCEL")
            print("svc stopping cleanly")
            return "stopped"
        end
    end
end

return { main = main }
