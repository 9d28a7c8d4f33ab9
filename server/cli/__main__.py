"""`python -m server.cli` is the `mailgate` command."""

from server.cli import main

main()
