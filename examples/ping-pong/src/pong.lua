-- Answers each "ping" with a "pong" carrying the same number; stops on "stop"
-- and returns how many pings it answered.
local function main()
    local inbox = process.inbox()
    local answered = 0
    while true do
        local msg = inbox:receive()
        local topic = msg:topic()
        if topic == "ping" then
            answered = answered + 1
            process.send(msg:from(), "pong", msg:payload():data())
        elseif topic == "stop" then
            return answered
        end
    end
end

return { main = main }
