-- An error at the top level ends the script with exit code 1.
print("before the error")
local function fail(what)
    error("top-level failure: " .. what)
end
fail("on purpose")
print("never printed")
