from cloudmon.cli import main

main()
