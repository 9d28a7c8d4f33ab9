"""One mailbox under load, and delivery attempts that cannot overlap (issue 24 item 2).

Against the session's real dev server: every admission of a busy mailbox succeeds on its
first attempt, an admission that waits long keeps its attempt alive with heartbeats, and an
attempt ends before Temporal would hand its activity to the next one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from server.app import Mailgate
from server.validation import PolicyChanges
from tests.support.proofs import TEST_PROOF_KEY, signed_request, warranted
from workflows.activities.send import MailActivities
from workflows.ids import mailbox_workflow_id, message_id, send_id
from workflows.mailbox import MailboxWorkflow
from workflows.mailbox_models import MailboxState
from workflows.models import (
    DeliveryReceipt,
    DeliveryRequest,
    EmailAddress,
    EmailDraft,
    MailboxConfig,
    SendRequest,
)
from workflows.providers.base import ProviderSet, TemporaryDeliveryError
from workflows.providers.fake import FakeProvider
from workflows.send import SendEmailWorkflow
from workflows.worker import build_worker

SENDS = 100


async def activity_seconds(client: Client, workflow_id: str) -> float:
    """How long the send's admit-and-deliver activity ran (started to completed)."""
    started = None
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("activity_task_started_event_attributes"):
            started = event.event_time.ToDatetime()
        if event.HasField("activity_task_completed_event_attributes") and started is not None:
            return (event.event_time.ToDatetime() - started).total_seconds()
    raise AssertionError(f"{workflow_id} completed no activity")


async def first_attempts_only(client: Client, workflow_id: str) -> bool:
    """Whether the send's activities all succeeded on their first attempt (no failure, no timeout)."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        ):
            return False
        started = event.activity_task_started_event_attributes
        if event.HasField("activity_task_started_event_attributes") and started.attempt != 1:
            return False
    return True


async def test_one_mailbox_admits_100_concurrent_sends_each_once(app: Mailgate, outbox: list[DeliveryRequest]) -> None:
    mailbox = app.settings.default_mailbox
    # Monitored with a rate limit: every admission needs the mailbox workflow itself.
    await app.mailboxes.set_mode(mailbox, "monitored", actor="admin", role="human")
    await app.mailboxes.configure(mailbox, PolicyChanges(rate_per_hour=10_000), actor="admin")
    started = time.monotonic()
    results = await asyncio.gather(
        *(
            app.sends.submit(mailbox=mailbox, to=[f"r{i}@example.com"], subject=f"load {i}", body="b")
            for i in range(SENDS)
        )
    )
    # Their results, not queries: a query competes with the load for the worker's attention.
    handles = [app.client.get_workflow_handle_for(SendEmailWorkflow.run, r.send_id) for r in results]
    states = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), timeout=90)
    elapsed = time.monotonic() - started
    assert [s.status for s in states] == ["sent"] * SENDS
    ours = {r.send_id for r in results}
    copies = Counter(request.send_id for request in outbox if request.send_id in ours)
    assert set(copies.values()) == {1} and len(copies) == SENDS  # no duplicates
    clean = await asyncio.gather(*(first_attempts_only(app.client, r.send_id) for r in results))
    assert clean.count(False) == 0  # 0 failed admissions (or deliveries)
    mailbox_state = await app.mailboxes.state(mailbox)
    assert len(mailbox_state.reviews) == SENDS
    assert len({a.send_id for a in mailbox_state.admissions} & ours) == SENDS
    # Batched: far fewer updates than sends reached the mailbox workflow.
    updates = 0
    async for event in app.client.get_workflow_handle(mailbox_workflow_id(mailbox)).fetch_history_events():
        updates += event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    assert updates < SENDS // 2
    latencies = sorted((s.delivered_at - s.requested_at).total_seconds() for s in states if s.delivered_at)
    p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95) - 1]
    runs = sorted(await asyncio.gather(*(activity_seconds(app.client, r.send_id) for r in results)))
    print(
        f"{SENDS} concurrent sends on one mailbox: all sent in {elapsed:.1f} s, "
        f"submit-to-delivery p50 {p50:.1f} s, p95 {p95:.1f} s; admit-and-deliver activity "
        f"p50 {runs[SENDS // 2]:.2f} s, p95 {runs[int(SENDS * 0.95) - 1]:.2f} s; {updates} updates reached the mailbox"
    )


async def test_an_admission_that_waits_long_heartbeats_and_delivers_once(temporal_env: WorkflowEnvironment) -> None:
    """The mailbox's worker is away for longer than the delivery's 10 s heartbeat timeout. The
    attempt waiting for its admission must stay alive: before, it timed out, a retry started,
    and both attempts delivered once the mailbox answered."""
    client = temporal_env.client
    sends_queue, mailbox_queue = f"tq-{uuid.uuid4().hex}", f"tq-{uuid.uuid4().hex}"
    address = f"box-{uuid.uuid4().hex[:8]}@mailgate.local"
    config = MailboxConfig(address=address, mode="monitored")
    await client.start_workflow(
        MailboxWorkflow.run,
        MailboxState(config=config, created_by="tests", created_at=datetime.now(UTC), provisioned=True),
        id=mailbox_workflow_id(address),
        task_queue=mailbox_queue,
    )
    provider = FakeProvider()
    draft = EmailDraft(to=(EmailAddress(address="b@example.com"),), subject="s", body="b")
    sid = send_id(address, uuid.uuid4().hex)
    request = signed_request(
        SendRequest(
            send_id=sid,
            mailbox=address,
            requester="agent",
            draft=draft,
            message_id=message_id(sid, address),
            content_hash="x",
            policy=config.policy(),
            requested_at=datetime.now(UTC),
            approval_timeout=timedelta(hours=1),
            notify=False,
        )
    )
    async with build_worker(client, sends_queue, ProviderSet(provider), proof_key=TEST_PROOF_KEY):
        handle = await client.start_workflow(SendEmailWorkflow.run, request, id=sid, task_queue=sends_queue)
        await asyncio.sleep(14)  # past the heartbeat timeout, and past a retry's first backoff
        async with build_worker(client, mailbox_queue, ProviderSet(FakeProvider()), proof_key=TEST_PROOF_KEY):
            state = await asyncio.wait_for(handle.result(), timeout=60)
            await asyncio.sleep(3)  # an attempt that outlived its timeout would deliver now
    assert state.status == "sent"
    assert len(provider.sent) == 1
    assert await first_attempts_only(client, sid)


@workflow.defn(sandboxed=False)
class DeliverOnce:
    """Runs the real delivery activity with a short start-to-close timeout, twice at most."""

    @workflow.run
    async def run(self, request: DeliveryRequest) -> DeliveryReceipt:
        return await workflow.execute_activity_method(
            MailActivities.deliver,
            request,
            start_to_close_timeout=timedelta(seconds=8),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=2),
        )


async def test_a_delivery_attempt_ends_before_its_timeout_hands_it_to_the_next(
    temporal_env: WorkflowEnvironment,
) -> None:
    """A provider that hangs: the attempt gives up before its start-to-close timeout, so it is
    over when the next attempt starts; the two never deliver side by side."""
    client = temporal_env.client
    spans: list[tuple[float, float]] = []

    async def slow_then_quick(request: DeliveryRequest) -> DeliveryReceipt:
        call = len(spans)
        spans.append((time.monotonic(), float("inf")))
        try:
            if call == 0:
                await asyncio.sleep(30)
            return DeliveryReceipt(message_id=request.message_id)
        finally:
            spans[call] = (spans[call][0], time.monotonic())

    queue = f"tq-{uuid.uuid4().hex}"
    activities = MailActivities(client, ProviderSet(FakeProvider(slow_then_quick)), TEST_PROOF_KEY)
    draft = EmailDraft(to=(EmailAddress(address="b@example.com"),), subject="s", body="b")
    workflow_id = f"deliver-{uuid.uuid4().hex}"
    request = warranted(
        DeliveryRequest(
            send_id=workflow_id,
            mailbox="a@mailgate.local",
            draft=draft,
            message_id="<s@mailgate.local>",
            date=datetime.now(UTC),
        )
    )
    async with Worker(client, task_queue=queue, workflows=[DeliverOnce], activities=[activities.deliver]):
        receipt = await client.execute_workflow(DeliverOnce.run, request, id=workflow_id, task_queue=queue)
    assert receipt.message_id == "<s@mailgate.local>"
    assert len(spans) == 2
    (first_start, first_end), (second_start, _) = spans
    assert first_end <= second_start  # the first attempt was over before the second began
    assert first_end - first_start < 8


async def test_a_retried_delivery_goes_with_the_answer_its_first_attempt_got(
    app: Mailgate, outbox: list[DeliveryRequest]
) -> None:
    """Same send, same answer (item 8): the first attempt was let out and then failed in a way
    that may have delivered; the mailbox was made read_only meanwhile. The retry does not end
    the send `blocked` (it may be out already): it delivers again under the same Message-ID,
    which the provider de-duplicates."""
    mailbox = app.settings.default_mailbox
    await app.mailboxes.set_mode(mailbox, "autonomous", actor="admin", role="human")
    provider = app.providers.default
    send = provider.send
    calls: list[str] = []

    async def flaky(request: DeliveryRequest) -> DeliveryReceipt:
        calls.append(request.message_id)
        if len(calls) == 1:
            await app.mailboxes.set_mode(mailbox, "read_only", actor="admin", role="human")
            raise TemporaryDeliveryError("connection dropped after DATA")
        return await send(request)

    provider.send = flaky  # type: ignore[method-assign]
    result = await app.sends.submit(mailbox=mailbox, to=["b@example.com"], subject="s", body="b")
    handle = app.client.get_workflow_handle_for(SendEmailWorkflow.run, result.send_id)
    state = await asyncio.wait_for(handle.result(), timeout=30)
    assert state.status == "sent", state.reason
    assert calls == [result.message_id] * 2
