"""`python -m dqnlab`: the same as the `dqnlab` command."""

from dqnlab.cli import main

main()
