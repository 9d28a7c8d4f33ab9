"""The `mailgate` command line: the stack, and the human side of every decision.

One module per command group; `command.py` holds the decorator every command is made with.
"""

from __future__ import annotations

import os

import click

from server.cli.approvals import approvals, sends
from server.cli.auth import auth
from server.cli.command import finish, group, run
from server.cli.inbound import inbound, sandbox
from server.cli.mailbox import mailbox, reviews, upgrades
from server.cli.people import agents, people
from server.cli.serve import mcp, serve, setup, worker
from server.version import VERSION

__all__ = ["finish", "main", "run"]


@click.version_option(VERSION, prog_name="mailgate")
@group
def main() -> None:
    """mailgate: durable email for AI agents, with graduated human oversight.

    Start everything with `mailgate serve`; decide on pending emails with
    `mailgate approvals`. Every command finds the running stack from --data-dir.
    """
    # Everything mailgate and its children (the Temporal dev server, SQLite's WAL and SHM
    # files) create holds drafts or secrets: readable by this user only.
    os.umask(0o077)


main.context_settings["help_option_names"] = ["-h", "--help"]
for each in (
    serve,
    mcp,
    worker,
    setup,
    approvals,
    sends,
    mailbox,
    reviews,
    upgrades,
    inbound,
    sandbox,
    auth,
    people,
    agents,
):
    main.add_command(each)
