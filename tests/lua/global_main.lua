-- A global main function is the process too.
function main()
    print("in global main")
end
