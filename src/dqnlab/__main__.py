from dqnlab.cli import main

main()
