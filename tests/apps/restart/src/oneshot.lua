local function main()
    print("oneshot ran")
    return "finished"
end

return { main = main }
