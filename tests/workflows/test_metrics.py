"""mailgate's metrics leave the worker through the Temporal SDK's Prometheus exporter: a provider
that refuses a delivery shows as a provider error and a failed send.

Counts from workflow code are at least once, not exactly once: a replay counts nothing, but when
the workflow task that ends a send fails (a child's result arrives meanwhile; about one run in five
here) the retried task runs the code again as new and counts again (docs/deploy.md says so)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from server.telemetry import free_loopback_address, metrics_runtime
from tests.prometheus import sample
from tests.support.proofs import TEST_PROOF_KEY, signed_decision, signed_request
from workflows import ids
from workflows.mailbox import MailboxWorkflow
from workflows.mailbox_models import MailboxState
from workflows.models import (
    Decision,
    DeliveryReceipt,
    DeliveryRequest,
    EmailAddress,
    EmailDraft,
    MailboxConfig,
    MailboxPolicy,
    SendRequest,
)
from workflows.providers.base import PermanentDeliveryError, ProviderSet
from workflows.providers.fake import FakeProvider
from workflows.send import SendEmailWorkflow
from workflows.worker import build_worker


def refuse(request: DeliveryRequest) -> DeliveryReceipt:
    raise PermanentDeliveryError("550 mailbox unavailable")


async def test_a_refused_delivery_counts_a_provider_error_and_a_failed_send(temporal_env: WorkflowEnvironment) -> None:
    address = free_loopback_address()
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        runtime=metrics_runtime(address),
        data_converter=temporal_env.client.data_converter,
    )
    queue = f"tq-{uuid.uuid4().hex}"
    mailbox = f"metrics-{uuid.uuid4().hex[:8]}@mailgate.local"
    send_id = ids.send_id(mailbox, uuid.uuid4().hex)
    draft = EmailDraft(to=(EmailAddress(address="bob@example.com"),), subject="s", body="b")
    request = signed_request(
        SendRequest(
            send_id=send_id,
            mailbox=mailbox,
            requester="agent",
            draft=draft,
            message_id=ids.message_id(send_id, mailbox),
            content_hash=ids.content_hash(draft),
            policy=MailboxPolicy(mode="gated_send"),
            requested_at=datetime.now(UTC),
            approval_timeout=timedelta(hours=1),
        )
    )
    async with build_worker(client, queue, ProviderSet(FakeProvider(refuse)), proof_key=TEST_PROOF_KEY):
        state = MailboxState(
            config=MailboxConfig(address=mailbox, mode="gated_send"),
            created_by="tests",
            created_at=datetime.now(UTC),
            provisioned=True,
        )
        await client.start_workflow(MailboxWorkflow.run, state, id=ids.mailbox_workflow_id(mailbox), task_queue=queue)
        handle = await client.start_workflow(SendEmailWorkflow.run, request, id=send_id, task_queue=queue)
        await handle.execute_update(
            SendEmailWorkflow.decide, signed_decision(send_id, Decision(decision="approve", approver="alice"))
        )
        result = await handle.result()
        # A query on a closed send replays its history: a replay must not count.
        await handle.query(SendEmailWorkflow.state)
        await handle.query(SendEmailWorkflow.state)
        async with httpx.AsyncClient(timeout=10) as http:
            text = (await http.get(f"http://{address}/metrics")).text
    assert result.status == "failed", result.reason
    assert sample(text, "mailgate_provider_errors_total", provider="fake", permanent="true") == 1, text
    assert sample(text, "mailgate_sends_total", status="failed", mailbox=mailbox) in (1, 2)
    assert sample(text, "mailgate_sends_total", status="sent", mailbox=mailbox) == 0
    assert sample(text, "mailgate_approval_latency_count", outcome="approve") in (1, 2)
