-- A script that returns { main = fn }: main is the process.
local function main()
    print("in main", process.pid())
    return "done"
end
print("top level runs first")
return { main = main }
