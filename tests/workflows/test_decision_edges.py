"""The edges of a send's decision window, on the real dev server and the sandbox.

Each test holds the send's worker back so that two things land in one workflow task, the way
they do when workers are busy or down: a decision and the expiry timer; a cancel and the start.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.credentials import load_secrets
from server.errors import MailgateError
from server.validation import AttachmentInput, parse_edits
from tests.support.histories import keep_history
from tests.support.proofs import signed_decision, signed_request
from tests.support.wait import wait_for_status
from workflows import ids
from workflows.models import Decision, EmailAddress, EmailDraft, MailboxPolicy, OversightMode, SendRequest, SendState
from workflows.send import SendEmailWorkflow
from workflows.temporal import STATUS
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker


def request(app: Mailgate, mode: OversightMode, window: timedelta) -> SendRequest:
    mailbox = app.settings.default_mailbox
    send_id = ids.send_id(mailbox, uuid.uuid4().hex)
    draft = EmailDraft(to=(EmailAddress(address="bob@example.com"),), subject="edge", body="b")
    request = SendRequest(
        send_id=send_id,
        mailbox=mailbox,
        requester="agent",
        draft=draft,
        message_id=ids.message_id(send_id, mailbox),
        content_hash=ids.content_hash(draft),
        policy=MailboxPolicy(mode=mode),
        requested_at=datetime.now(UTC),
        approval_timeout=window,
        notify=False,
    )
    return signed_request(request, key_of(app))


def key_of(app: Mailgate) -> bytes:
    """The proof key of this app's front door: its workers check with it."""
    return proof_key(load_secrets(app.settings).secret_key)


async def start(
    app: Mailgate, temporal_env: WorkflowEnvironment, req: SendRequest, queue: str
) -> WorkflowHandle[SendEmailWorkflow, SendState]:
    return await temporal_env.client.start_workflow(SendEmailWorkflow.run, req, id=req.send_id, task_queue=queue)


async def test_a_decision_handled_with_the_expiry_timer_loses_to_expiry(
    app: Mailgate, temporal_env: WorkflowEnvironment
) -> None:
    queue = f"edge-{uuid.uuid4().hex}"
    req = request(app, "gated_send", timedelta(seconds=2))
    async with build_worker(temporal_env.client, queue, app.providers, proof_key=key_of(app)):
        handle = await start(app, temporal_env, req, queue)
        await wait_for_status(app, req.send_id, {"pending_approval"})
    # No worker: the window's timer fires, then an approval arrives; one task will see both.
    await asyncio.sleep(2.5)
    late = Decision(decision="approve", approver="alice", decision_id="late-1")
    await handle.signal(SendEmailWorkflow.decide_signal, signed_decision(req.send_id, late, key_of(app)))
    async with build_worker(temporal_env.client, queue, app.providers, proof_key=key_of(app)):
        state = await asyncio.wait_for(handle.result(), 30)
    assert state.status == "expired", state.reason
    # Refused as late (or never applied: the send ended while its proof was being checked).
    assert not any(e.kind == "approved" for e in state.events)
    assert app.sandbox.deliveries(app.settings.default_mailbox) == []
    await keep_history(app, req.send_id, "send-expiry-wins")


async def test_a_cancel_before_an_autonomous_sends_first_task_stops_it(
    app: Mailgate, temporal_env: WorkflowEnvironment
) -> None:
    await app.mailboxes.set_mode(app.settings.default_mailbox, "autonomous", actor="ops", role="human")
    queue = f"edge-{uuid.uuid4().hex}"
    req = request(app, "autonomous", timedelta(hours=1))
    handle = await start(app, temporal_env, req, queue)
    # The cancel waits for a worker; the first task then holds both the start and the cancel.
    cancelling = asyncio.create_task(handle.execute_update(SendEmailWorkflow.cancel, "agent"))
    await asyncio.sleep(0.5)
    async with build_worker(temporal_env.client, queue, app.providers, proof_key=key_of(app)):
        answered = await asyncio.wait_for(cancelling, 20)
        state = await asyncio.wait_for(handle.result(), 20)
    assert answered.status == state.status == "cancelled", state.reason
    assert app.sandbox.deliveries(app.settings.default_mailbox) == []
    await keep_history(app, req.send_id, "send-cancelled-before-first-task")


async def test_an_edit_that_outgrows_the_payload_limit_is_refused_clearly(app: Mailgate) -> None:
    attachment = AttachmentInput(
        filename="big.bin", content_base64=base64.b64encode(bytes(range(256)) * 4096).decode()
    )  # 1 MiB: 1.4 MB as base64 in the request
    sent = await app.sends.submit(
        mailbox=app.settings.default_mailbox,
        to=["bob@example.com"],
        subject="Big",
        body="x" * 300_000,
        attachments=[attachment],
    )
    # 512 KB of quoted text: twice that as JSON, so the delivery's input would pass 2 MB.
    edited = Decision(decision="approve", approver="alice", edits=parse_edits(body='"' * 512 * 1024))
    with pytest.raises(MailgateError, match="payload"):
        await asyncio.wait_for(app.sends.decide(sent.send_id, edited), 30)
    assert (await app.sends.status(sent.send_id)).status == "pending_approval"
    # The same approval without the edit goes through.
    await app.sends.decide(sent.send_id, Decision(decision="approve", approver="alice"))
    await wait_for_status(app, sent.send_id, {"sent"}, timeout=30)


async def test_a_temporal_cancel_of_a_waiting_send_ends_it_cancelled(app: Mailgate) -> None:
    """`temporal workflow cancel` (or the UI) on a send that waits for a human: it ends as
    cancelled in its state and in listings, not Canceled with its status stuck at pending."""
    sent = await app.sends.submit(mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject="s", body="b")
    handle = app.client.get_workflow_handle_for(SendEmailWorkflow.run, sent.send_id)
    await handle.cancel()
    state = await asyncio.wait_for(handle.result(), 20)
    assert state.status == "cancelled" and "through Temporal" in state.reason
    description = await handle.describe()
    assert description.typed_search_attributes.get(STATUS) == "cancelled"
    assert app.sandbox.deliveries(app.settings.default_mailbox) == []
    await keep_history(app, sent.send_id, "send-temporal-cancel-pending")
