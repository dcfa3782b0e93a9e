-- The far side of the messaging benchmarks: prints its pid (the bench hands
-- it to the driver on the other node), answers every "ping" with a "pong"
-- carrying the same payload, and counts "m" messages for the throughput
-- runs. "start" resets the count and sets the ack window (0: no acks);
-- "end" answers with the count, so a lost message shows up as a short
-- count instead of a hang.
local function main()
    print("peer " .. process.pid())
    local inbox = process.inbox()
    local count, window = 0, 0
    while true do
        local msg = inbox:receive()
        local topic = msg:topic()
        if topic == "m" then
            count = count + 1
            if window > 0 and count % window == 0 then
                process.send(msg:from(), "ack", count)
            end
        elseif topic == "ping" then
            process.send(msg:from(), "pong", msg:payload():data())
        elseif topic == "start" then
            count, window = 0, msg:payload():data()
            process.send(msg:from(), "started", true)
        elseif topic == "end" then
            process.send(msg:from(), "counted", count)
        end
    end
end

return { main = main }
