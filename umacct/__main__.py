from umacct.cli.app import main

main()
