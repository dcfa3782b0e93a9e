-- Lines from one process appear in order, whole.
for i = 1, 2000 do
    print("line", i, string.rep("x", 50))
end
