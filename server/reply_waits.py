"""Waiting for a reply to a send: a wait lives in Temporal (ReplyWaitWorkflow) until its deadline,
so a reply that arrives while nobody waits is kept for the next call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from server.errors import Conflict, InvalidInput, unavailable
from server.inbox import require_inbox
from server.sends import Sends
from server.settings import Settings
from server.views import ReplyOutcome, listing
from workflows.ids import mailbox_key, reply_wait_id
from workflows.models import FINAL_STATUSES
from workflows.providers.base import ProviderSet
from workflows.read_models import EmailSummary, ReplyWaitRequest
from workflows.reply_wait import ReplyWaitWorkflow
from workflows.temporal import MAILBOX
from workflows.watcher import MAX_WATCHES

MAX_WAIT_MINUTES = 7 * 24 * 60
PROGRESS_EVERY = 10.0

Progress = Callable[[float, float, str], Awaitable[None]]


class ReplyWaits:
    def __init__(self, client: Client, settings: Settings, providers: ProviderSet, sends: Sends) -> None:
        self._client = client
        self._settings = settings
        self._providers = providers
        self._sends = sends

    async def wait_for_reply(
        self, send_id: str, timeout_minutes: float, progress: Progress | None = None
    ) -> ReplyOutcome:
        if not 0 < timeout_minutes <= MAX_WAIT_MINUTES:
            raise InvalidInput(f"timeout_minutes: more than 0 and at most {MAX_WAIT_MINUTES} (7 days)")
        state = await self._sends.status(send_id)
        if state.status in FINAL_STATUSES and state.status != "sent":
            raise Conflict(f"send {state.send_id} is {state.status}: it was not sent, so no reply can come")
        started = datetime.now(UTC)
        provider = self._providers.for_mailbox(state.mailbox)
        require_inbox(state.mailbox, provider)
        reply = await provider.find_reply(state.mailbox, state.message_id)
        if reply is not None:
            return self._outcome(state.send_id, reply, started)
        deadline = started + timedelta(minutes=timeout_minutes)
        wait_id = reply_wait_id(state.send_id)
        await self._room_for_a_wait(wait_id, state.mailbox)
        try:
            handle = await self._client.start_workflow(
                ReplyWaitWorkflow.run,
                ReplyWaitRequest(
                    wait_id=wait_id,
                    send_id=state.send_id,
                    mailbox=state.mailbox,
                    message_id=state.message_id,
                    deadline=deadline,
                ),
                id=wait_id,
                task_queue=self._settings.task_queue,
                start_signal="extend",
                start_signal_args=[deadline],
                static_summary=f"waiting for a reply to {state.send_id}",
                search_attributes=TypedSearchAttributes([SearchAttributePair(MAILBOX, mailbox_key(state.mailbox))]),
            )
        except RPCError as err:
            raise unavailable(err) from err
        result = asyncio.ensure_future(handle.result())
        total = timeout_minutes * 60
        try:
            while True:
                remaining = (deadline - datetime.now(UTC)).total_seconds()
                if remaining <= 0:
                    break
                done, _ = await asyncio.wait({result}, timeout=min(PROGRESS_EVERY, remaining))
                if done:
                    outcome = result.result()
                    if outcome.reply is not None:
                        return self._outcome(state.send_id, outcome.reply, started)
                    break
                if progress is not None:
                    waited = (datetime.now(UTC) - started).total_seconds()
                    await progress(min(waited, total), total, f"waiting for a reply to {state.send_id}")
        finally:
            result.cancel()
        waited = (datetime.now(UTC) - started).total_seconds()
        return ReplyOutcome(
            send_id=state.send_id,
            status="timeout",
            waited_seconds=round(waited, 1),
            next_step=(
                "No reply yet. The wait goes on in mailgate until its deadline; call wait_for_reply again "
                "later (a reply that arrives meanwhile is kept for you)."
            ),
        )

    async def _room_for_a_wait(self, wait_id: str, mailbox: str) -> None:
        """A mailbox's watcher carries one entry per running reply wait, so their number is capped:
        a new wait is refused at the cap (a call for a wait already running just attaches to it)."""
        try:
            running = (await self._client.get_workflow_handle(wait_id).describe()).status
            if running == WorkflowExecutionStatus.RUNNING:
                return
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise unavailable(err) from err
        query = (
            f"WorkflowType = '{ReplyWaitWorkflow.__name__}' AND ExecutionStatus = 'Running' "
            f"AND {MAILBOX.name} = '{mailbox_key(mailbox)}'"
        )
        try:
            count = (await self._client.count_workflows(query)).count
        except RPCError as err:
            raise unavailable(err) from err
        if count >= MAX_WATCHES:
            raise Conflict(
                f"{mailbox} already has {count} reply waits running, the most it keeps; wait on one of "
                "those, or let some end (each ends at its deadline or with its reply)"
            )

    @staticmethod
    def _outcome(send_id: str, reply: EmailSummary, started: datetime) -> ReplyOutcome:
        return ReplyOutcome(
            send_id=send_id,
            status="replied",
            reply=listing(reply),
            waited_seconds=round((datetime.now(UTC) - started).total_seconds(), 1),
            next_step=f"read_email('{reply.mailbox}', '{reply.email_id}') shows the whole reply.",
        )
