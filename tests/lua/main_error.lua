-- An error raised in main: exit code 1, message and traceback on stderr.
local function helper()
    error("main failed on purpose")
end
local function main()
    print("in main")
    helper()
end
return { main = main }
