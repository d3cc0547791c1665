from functions.runtime.serve import main

main()
