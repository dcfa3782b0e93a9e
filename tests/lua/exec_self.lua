-- In FILE.lua mode the script is entry "app:main" on host "app:processes";
-- it can run copies of itself. The spawn arguments are the chunk's `...`.
local depth = ... or 0
if depth < 3 then
    local got, err = process.exec("app:main", "app:processes", depth + 1)
    assert(got, tostring(err))
    print("depth", depth, "child returned", got)
end
return depth * 10
