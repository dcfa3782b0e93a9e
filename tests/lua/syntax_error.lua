-- line 1
print("line 2")
local x = = 3
