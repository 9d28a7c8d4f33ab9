"""Client-side glue for inbound mail: starting and poking a mailbox's watcher (signal-with-start).
Used by the inbox activities and by server/ (``inbox.py``, and ``inbound_hooks.py`` for providers).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client

from workflows.ids import watcher_workflow_id
from workflows.read_models import WatcherState

WATCHER_WORKFLOW = "MailboxWatcherWorkflow"
DEFAULT_POLL = timedelta(seconds=60)


async def signal_watcher(
    client: Client,
    mailbox: str,
    task_queue: str,
    signal: str,
    args: Sequence[Any] = (),
    *,
    cursor: str | None = None,
    poll_interval: timedelta = DEFAULT_POLL,
) -> None:
    """Signal a mailbox's watcher, starting it first if it does not run (signal-with-start).

    ``cursor`` and ``poll_interval`` apply only when this call starts the watcher.
    """
    await client.start_workflow(
        WATCHER_WORKFLOW,
        WatcherState(mailbox=mailbox, cursor=cursor, poll_interval=poll_interval),
        id=watcher_workflow_id(mailbox),
        task_queue=task_queue,
        start_signal=signal,
        start_signal_args=list(args),
        static_summary=f"inbound watcher of {mailbox}",
    )
