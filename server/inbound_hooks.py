"""The InboundHooks of a running mailgate: whether a mailbox holds its inbound mail (its mode,
from Temporal), and pokes to the mailbox watchers when mail arrives. Providers call them.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.ids import mailbox_workflow_id
from workflows.watcher_client import DEFAULT_POLL, signal_watcher

log = logging.getLogger("mailgate.inbound")


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
