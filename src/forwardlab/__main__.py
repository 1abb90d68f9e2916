"""`python -m forwardlab` is the `forwardlab` command."""

from forwardlab.cli import main

main()
