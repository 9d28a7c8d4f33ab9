"""A human's decision on a send is checked in the workflow task where it arrives (a signature the
workflow verifies with the public key in its request), not by an activity: one task, as a bare
update costs. The delivery activity still checks the HMAC proofs (tests/workflows/trust/test_proofs.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from server.app import Mailgate
from server.credentials import load_secrets
from tests.support.app import make_settings
from tests.support.histories import keep_history
from tests.support.wait import provisioned, wait_for_status
from workflows.models import Decision
from workflows.send import SendEmailWorkflow
from workflows.trust.proofs import decision_check, proof_key, sign_decision
from workflows.trust.signatures import decision_signing_key, public_key_hex, sign_decision_key, signature_holds
from workflows.worker import build_worker

SEND_ID = "send-aaaaaaaaaaaaaaaaaaaa"


def test_a_signature_holds_only_for_its_key_its_send_its_fields_and_its_proof() -> None:
    key, other = decision_signing_key(proof_key(b"k" * 32)), decision_signing_key(proof_key(b"o" * 32))
    public = public_key_hex(key)
    assert public == public_key_hex(decision_signing_key(proof_key(b"k" * 32)))  # every front door agrees
    approve = sign_decision(
        proof_key(b"k" * 32), SEND_ID, Decision(decision="approve", approver="alice"), datetime.now(UTC)
    )
    signed = sign_decision_key(key, SEND_ID, approve)
    assert signed.signature is not None and signed.proof == approve.proof

    def holds(decision: Decision, send_id: str = SEND_ID) -> bool:
        return signature_holds(public, decision_check(send_id, decision), decision.signature or "")

    assert holds(signed)
    assert not holds(sign_decision_key(other, SEND_ID, approve))
    assert not holds(signed, "send-bbbbbbbbbbbbbbbbbbbb")
    assert not holds(signed.model_copy(update={"approver": "mallory"}))
    assert not holds(signed.model_copy(update={"proof": "1.00"}))
    assert not holds(signed.model_copy(update={"signature": "zz"}))
    assert not signature_holds("not hex", decision_check(SEND_ID, signed), signed.signature or "")
    # decided_at is the workflow's own stamp, set after signing.
    assert holds(signed.model_copy(update={"decided_at": datetime.now(UTC)}))


def _kinds(events: list[HistoryEvent]) -> list[str]:
    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events]


async def _history(app: Mailgate, send_id: str) -> list[HistoryEvent]:
    return [event async for event in app.client.get_workflow_handle(send_id).fetch_history_events()]


def _activities(events: list[HistoryEvent]) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def _pending(app: Mailgate, subject: str) -> str:
    sent = await app.sends.submit(
        mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject=subject, body="b"
    )
    assert sent.status == "pending_approval"
    # Answered by a query, so the send's first task has run: it is the one that chooses signatures
    # (a decision that comes with the first task chooses them itself: see the test below).
    await wait_for_status(app, sent.send_id, {"pending_approval"})
    return sent.send_id


async def test_an_approval_costs_one_workflow_task(app: Mailgate) -> None:
    send_id = await _pending(app, "one task")
    state = await app.sends.decide(send_id, Decision(decision="approve", approver="alice"))
    assert state.status == "sending"
    await wait_for_status(app, send_id, {"sent"})
    events = await _history(app, send_id)
    assert "check_proof" not in _activities(events)
    kinds = _kinds(events)
    accepted = kinds.index("WORKFLOW_EXECUTION_UPDATE_ACCEPTED")
    completed = kinds.index("WORKFLOW_EXECUTION_UPDATE_COMPLETED")
    # Accepted and answered by the same workflow task's commands: nothing ran in between.
    assert "WORKFLOW_TASK_COMPLETED" not in kinds[accepted:completed]
    await keep_history(app, send_id, "send-approved-signed")


async def test_a_forged_signature_is_refused_where_it_arrives(app: Mailgate) -> None:
    send_id = await _pending(app, "forged")
    forger = decision_signing_key(proof_key(b"someone who reached Temporal"))
    decision = Decision(decision="approve", approver="mallory", decision_id="forged-1")
    forged = sign_decision_key(forger, send_id, sign_decision(b"x" * 32, send_id, decision, datetime.now(UTC)))
    handle = app.client.get_workflow_handle_for(SendEmailWorkflow.run, send_id)
    await handle.signal(SendEmailWorkflow.decide_signal, forged)
    for _ in range(100):
        state = await app.sends.status(send_id)
        if any(e.kind == "decision_refused" for e in state.events):
            break
        await asyncio.sleep(0.05)
    assert state.status == "pending_approval"
    assert "check_proof" not in _activities(await _history(app, send_id))


async def test_a_decision_from_a_front_door_that_does_not_sign_is_checked_by_the_activity(app: Mailgate) -> None:
    send_id = await _pending(app, "older front door")
    key = proof_key(load_secrets(app.settings).secret_key)
    decision = sign_decision(key, send_id, Decision(decision="approve", approver="alice"), datetime.now(UTC))
    handle = app.client.get_workflow_handle_for(SendEmailWorkflow.run, send_id)
    state = await handle.execute_update(SendEmailWorkflow.decide, decision)
    assert state.status == "sending"
    assert "check_proof" in _activities(await _history(app, send_id))


async def test_a_decision_that_comes_with_the_first_task_costs_no_activity(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Approved before any worker ran the send (as under load): the decision's handler runs before
    run() in that first task, and used to send it to the check_proof activity (issue 20)."""
    settings = make_settings(temporal_env, tmp_path)
    secrets = load_secrets(settings)
    app = Mailgate.build(settings, temporal_env.client, secrets)

    def worker() -> Worker:
        return build_worker(
            temporal_env.client, settings.task_queue, app.providers, proof_key=proof_key(secrets.secret_key)
        )

    async with worker():
        await app.mailboxes.create(settings.default_mailbox, created_by="tests")
        await provisioned(app, settings.default_mailbox)
    # No worker now: the decision is stored beside the start, and both come in the first task.
    sent = await app.sends.submit(mailbox=settings.default_mailbox, to=["bob@example.com"], subject="s", body="b")
    decision = Decision(decision="approve", approver="alice", decision_id="first-task")
    assert await app.sends.signal_decision(sent.send_id, decision) == "accepted"
    async with worker():
        await wait_for_status(app, sent.send_id, {"sent"})
        events = await _history(app, sent.send_id)
        assert _activities(events) == ["admit_and_deliver"]
        kinds = _kinds(events)
        # Decided in the first task itself: delivery was scheduled by its commands.
        completed = [i for i, kind in enumerate(kinds) if kind == "WORKFLOW_TASK_COMPLETED"]
        assert completed[0] < kinds.index("ACTIVITY_TASK_SCHEDULED") < completed[1]
        await keep_history(app, sent.send_id, "send-approved-in-first-task")
