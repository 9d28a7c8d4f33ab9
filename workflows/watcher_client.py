"""Client-side glue for inbound mail: starting and poking mailbox watchers, and asking
whether a mailbox holds its inbound mail. Used by activities, the SMTP listener and the CLI.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.ids import mailbox_workflow_id, watcher_workflow_id
from workflows.read_models import WatcherState

log = logging.getLogger("mailgate.inbound")
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


class TemporalInbound:
    """The InboundHooks of a running mailgate: modes from Temporal, pokes to the watchers."""

    def __init__(self, client: Client, task_queue: str, poll_interval: timedelta = DEFAULT_POLL) -> None:
        self._client = client
        self._task_queue = task_queue
        self._poll = poll_interval

    async def holds(self, mailbox: str) -> bool:
        # The mailbox workflow keeps its mode in its memo, which the server answers without a worker.
        handle = self._client.get_workflow_handle(mailbox_workflow_id(mailbox))
        try:
            description = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        memo = await description.memo()
        return memo.get("mode") == "gated_all"

    async def arrived(self, mailboxes: list[str], since: str | None = None) -> None:
        for mailbox in mailboxes:
            try:
                await signal_watcher(
                    self._client, mailbox, self._task_queue, "poke", cursor=since, poll_interval=self._poll
                )
            except (RPCError, RuntimeError) as exc:
                # The watcher's periodic poll picks the mail up anyway.
                log.warning("could not wake the watcher of %s: %s", mailbox, exc)
