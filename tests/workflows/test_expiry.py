"""The approval window, on the time-skipping test server: 72 hours pass in moments."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from tests.support.histories import keep_history
from tests.support.proofs import TEST_PROOF_KEY, signed_request
from workflows import ids
from workflows.models import EmailAddress, EmailDraft, MailboxPolicy, SendRequest
from workflows.providers.base import ProviderSet
from workflows.providers.fake import FakeProvider
from workflows.send import SendEmailWorkflow
from workflows.worker import build_worker


def request(hours: float) -> SendRequest:
    send_id = ids.send_id("agent@mailgate.local", uuid.uuid4().hex)
    draft = EmailDraft(to=(EmailAddress(address="bob@example.com"),), subject="s", body="b")
    return signed_request(
        SendRequest(
            send_id=send_id,
            mailbox="agent@mailgate.local",
            requester="agent",
            draft=draft,
            message_id=ids.message_id(send_id, "agent@mailgate.local"),
            content_hash=ids.content_hash(draft),
            policy=MailboxPolicy(mode="gated_send"),
            requested_at=datetime.now(UTC),
            approval_timeout=timedelta(hours=hours),
        )
    )


@pytest.mark.parametrize("hours", [72.0, 0.5])
async def test_no_decision_within_the_window_ends_as_expired_not_failed(
    skipping_env: WorkflowEnvironment, hours: float
) -> None:
    provider = FakeProvider()
    queue = f"tq-{uuid.uuid4().hex}"
    req = request(hours)
    async with build_worker(skipping_env.client, queue, ProviderSet(provider), proof_key=TEST_PROOF_KEY):
        started = await skipping_env.get_current_time()
        try:
            state = await skipping_env.client.execute_workflow(
                SendEmailWorkflow.run, req, id=req.send_id, task_queue=queue
            )
        except WorkflowFailureError as err:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"the workflow failed instead of expiring: {err}")
        waited = await skipping_env.get_current_time() - started
        if hours == 72.0:
            await keep_history(skipping_env.client, req.send_id, "send-expired")
    assert state.status == "expired"
    assert state.expires_at is None
    assert waited >= timedelta(hours=hours)
    assert provider.sent == []
