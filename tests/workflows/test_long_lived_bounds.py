"""The 2,000-event and 2 MB guards of the inbound long-lived workflows (issue 24).

The mailbox watcher and a reply wait, on the time-skipping server, driven to and past their
bounds: each continues as new near its history limit and carries less than Temporal's 2 MB;
and on the dev server, the watcher passes on emails too large to cross Temporal whole.
(MailboxWorkflow's guards are in test_mailbox_bounds.py.)
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.support.histories import replays
from tests.support.proofs import TEST_PROOF_KEY
from workflows.ids import intake_workflow_id, watcher_workflow_id
from workflows.models import EmailAddress
from workflows.providers.base import ProviderSet
from workflows.providers.fake import FakeProvider
from workflows.read_models import Changes, EmailSummary, IntakeConfig, ReplyWaitRequest, Watch, WatcherState
from workflows.reply_wait import HISTORY_LIMIT as WAIT_HISTORY_LIMIT
from workflows.reply_wait import ReplyWaitWorkflow
from workflows.watcher import HISTORY_LIMIT as WATCHER_HISTORY_LIMIT
from workflows.watcher import MAX_WATCHES, MailboxWatcherWorkflow
from workflows.worker import build_worker

TWO_MB = 2 * 1024 * 1024


async def runs(client: Client, workflow_id: str) -> list[str]:
    """The run ids of a workflow id, oldest first."""
    found = [e.run_id async for e in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    return list(reversed(found))


async def first_run_events(client: Client, workflow_id: str, run_id: str) -> list[Any]:
    return [e async for e in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()]


async def continued(handle: WorkflowHandle[Any, Any], first: str, timeout: float = 60) -> None:
    """Wait for the run after ``first``: once signals stop, the workflow's continue-as-new goes
    through (while signals keep coming, each attempt is refused and tried again)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while (await handle.describe()).run_id == first:
        assert loop.time() < until, "it did not continue as new"
        await asyncio.sleep(0.2)


async def started_input_size(client: Client, workflow_id: str) -> int:
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        return sum(p.ByteSize() for p in event.workflow_execution_started_event_attributes.input.payloads)
    raise AssertionError("no history")


async def test_a_reply_wait_extended_again_and_again_continues_as_new_with_its_deadline(
    skipping_env: WorkflowEnvironment,
) -> None:
    """Every wait_for_reply call signals `extend`; thousands of calls must not run the wait's
    history into Temporal's limit. Past its limit it continues as new, with the latest deadline."""
    client = skipping_env.client
    queue = f"tq-{uuid.uuid4().hex}"
    async with build_worker(client, queue, ProviderSet(FakeProvider()), proof_key=TEST_PROOF_KEY):
        now = await skipping_env.get_current_time()
        wait_id = f"reply-wait-{uuid.uuid4().hex}"
        request = ReplyWaitRequest(
            wait_id=wait_id,
            send_id="send-x",
            mailbox=f"box-{uuid.uuid4().hex[:8]}@mailgate.local",
            message_id="<send-x@mailgate.local>",
            deadline=now + timedelta(days=1),
        )
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            ReplyWaitWorkflow.run, request, id=wait_id, task_queue=queue
        )
        first = handle.result_run_id
        assert first is not None
        deadline = request.deadline
        handle = client.get_workflow_handle(wait_id)  # signals go to the latest run
        for i in range(3 * WAIT_HISTORY_LIMIT):
            deadline += timedelta(seconds=1)
            await handle.signal(ReplyWaitWorkflow.extend, deadline)
            if i % 50 == 49 and (await handle.describe()).raw_description.workflow_execution_info.history_length > (
                WAIT_HISTORY_LIMIT
            ):
                break
        latest = client.get_workflow_handle_for(ReplyWaitWorkflow.run, wait_id)
        await continued(latest, first)
        events = await first_run_events(client, wait_id, first)
        assert WAIT_HISTORY_LIMIT <= len(events) < WAIT_HISTORY_LIMIT + 100
        assert events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
        await replays(client, wait_id, first)
        # The 2 MB guard: what it carries is its request, ids and a deadline, whatever came before.
        assert await started_input_size(client, wait_id) < 2048
        # The new run keeps the latest deadline, and still takes its reply.
        for _ in range(100):
            if await latest.query(ReplyWaitWorkflow.deadline) == deadline:
                break
            await handle.signal(ReplyWaitWorkflow.extend, deadline)
        assert await latest.query(ReplyWaitWorkflow.deadline) == deadline
        reply = EmailSummary(
            email_id="1",
            mailbox=request.mailbox,
            folder="inbox",
            message_id="<r@example.com>",
            thread_id="t",
            received_at=now,
        )
        await latest.signal(ReplyWaitWorkflow.reply_found, reply)
        result = await latest.result()
        assert result.status == "replied" and result.reply == reply
        # The wait started the mailbox's watcher, whose poll timers would hold up time skipping.
        await client.get_workflow_handle(watcher_workflow_id(request.mailbox)).terminate()


async def test_the_watcher_keeps_at_most_its_watches_and_carries_under_2_mb(
    skipping_env: WorkflowEnvironment,
) -> None:
    """More reply waits registered than the watcher keeps: the oldest go, the newest stay, and
    past its history limit it continues as new carrying well under 2 MB."""
    client = skipping_env.client
    queue = f"tq-{uuid.uuid4().hex}"
    watcher_id = f"watch-{uuid.uuid4().hex}"
    state = WatcherState(mailbox=f"box-{uuid.uuid4().hex[:8]}@mailgate.local", cursor="c-1")
    total = MAX_WATCHES + 200

    def watch(i: int) -> Watch:
        return Watch(
            wait_id=f"reply-wait-send-{i:06d}{'x' * 14}", message_id=f"<send-{i:06d}{'x' * 14}@mailgate.local>"
        )

    async with build_worker(client, queue, ProviderSet(FakeProvider()), proof_key=TEST_PROOF_KEY):
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            MailboxWatcherWorkflow.run, state, id=watcher_id, task_queue=queue
        )
        first = handle.result_run_id
        assert first is not None
        latest = client.get_workflow_handle(watcher_id)  # signals go to the latest run
        for i in range(total):
            await latest.signal(MailboxWatcherWorkflow.watch, watch(i))
        # Past its history limit (a signal is at least one event): it continued as new.
        await continued(latest, first)
        events = await first_run_events(client, watcher_id, first)
        # While signals stream in, Temporal refuses each continue-as-new that missed one and the
        # worker tries again: the first run overshoots by about the signals sent meanwhile, still
        # far below Temporal's 51,200-event limit.
        assert WATCHER_HISTORY_LIMIT <= len(events) < WATCHER_HISTORY_LIMIT + total
        assert events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
        await replays(client, watcher_id, first)
        carried = await latest.query(MailboxWatcherWorkflow.describe)
        assert len(carried.watches) == MAX_WATCHES
        assert carried.watches[-1] == watch(total - 1)
        assert watch(0) not in carried.watches
        assert await started_input_size(client, watcher_id) < TWO_MB // 4
        await latest.terminate()  # its poll timers would hold up time skipping in later tests


async def all_started(client: Client, mailbox: str, count: int) -> bool:
    for i in range(count):
        try:
            await client.get_workflow_handle(intake_workflow_id(mailbox, f"<huge-{i}@example.com>")).describe()
        except RPCError:
            return False
    return True


class HugeHeaders(FakeProvider):
    """An inbox of emails with enormous headers: a subject of 600 KB, 200 long recipients."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def email(self, mailbox: str, i: int) -> EmailSummary:
        people = tuple(EmailAddress(address=f"{'p' * 90}{n}@example.com", name="n" * 200) for n in range(200))
        return EmailSummary(
            email_id=str(i),
            mailbox=mailbox,
            folder="inbox",
            message_id=f"<huge-{i}@example.com>",
            thread_id=f"t{i}",
            to=people,
            cc=people,
            subject="S" * 600_000,
            received_at=datetime.now(UTC),
        )

    async def changes(self, mailbox: str, cursor: str | None, limit: int = 100) -> Changes:
        start = int(cursor or 0)
        end = min(start + limit, self.count)
        emails = tuple(self.email(mailbox, i) for i in range(start, end))
        return Changes(emails=emails, cursor=str(end), more=end < self.count)


async def test_the_watcher_passes_on_emails_with_huge_headers_within_the_payload_limit(
    temporal_env: WorkflowEnvironment,
) -> None:
    """On the dev server, which refuses payloads over 2 MB: a scan of such emails used to fail
    for good (and the watcher with it); summaries that cross Temporal are bounded instead."""
    client = temporal_env.client
    queue = f"tq-{uuid.uuid4().hex}"
    mailbox = f"box-{uuid.uuid4().hex[:8]}@mailgate.local"
    count = 8
    state = WatcherState(mailbox=mailbox, intake=IntakeConfig(workflow="IntakeProbe", task_queue=f"{queue}-intake"))
    async with build_worker(client, queue, ProviderSet(HugeHeaders(count)), proof_key=TEST_PROOF_KEY):
        handle = await client.start_workflow(
            MailboxWatcherWorkflow.run, state, id=watcher_workflow_id(mailbox), task_queue=queue
        )
        try:
            loop = asyncio.get_running_loop()
            until = loop.time() + 30
            while not await all_started(client, mailbox, count):
                assert loop.time() < until, "the watcher did not get through the inbox"
                await asyncio.sleep(0.2)
            assert (await handle.query(MailboxWatcherWorkflow.describe)).cursor == str(count)
        finally:
            await handle.terminate()
    for i in range(count):
        intake = client.get_workflow_handle(intake_workflow_id(mailbox, f"<huge-{i}@example.com>"))
        started = await anext(aiter(intake.fetch_history_events()))
        summary = started.workflow_execution_started_event_attributes.input.payloads[0]
        assert summary.ByteSize() < 64 * 1024
        await intake.terminate()
