"""SendEmailWorkflow against a real Temporal dev server and the real sandbox store."""

from __future__ import annotations

import pytest

from server.app import Mailgate
from server.errors import Conflict
from server.validation import parse_edits
from tests.support.histories import keep_history
from tests.support.proofs import signed_decision
from tests.support.wait import wait_for_status
from workflows.ids import mailbox_workflow_id
from workflows.models import Decision
from workflows.trust.proofs import proof_key


def approve(approver: str = "alice", **edits: object) -> Decision:
    return Decision(decision="approve", approver=approver, channel="test", edits=parse_edits(**edits))  # type: ignore[arg-type]


async def submit(app: Mailgate, **overrides: object) -> str:
    fields: dict[str, object] = {
        "mailbox": app.settings.default_mailbox,
        "to": ["Bob <bob@example.com>"],
        "subject": "Quarterly numbers",
        "body": "Hi Bob, the numbers are attached in spirit.",
        **overrides,
    }
    result = await app.sends.submit(**fields)  # type: ignore[arg-type]
    return result.send_id


async def test_gated_send_waits_then_delivers_once_after_approval(app: Mailgate) -> None:
    send_id = await submit(app)
    state = await app.sends.status(send_id)
    assert state.status == "pending_approval"
    assert state.expires_at is not None
    assert app.sandbox.deliveries(app.settings.default_mailbox) == []

    after = await app.sends.decide(send_id, approve())
    assert after.status in ("sending", "sent")
    state = await wait_for_status(app, send_id, ["sent"])

    copies = app.sandbox.deliveries(app.settings.default_mailbox)
    assert [(c.message_id, c.recipient) for c in copies] == [(state.message_id, "bob@example.com")]
    assert state.decision is not None and state.decision.approver == "alice"
    assert [e.kind for e in state.events] == ["requested", "approved", "sent"]
    await keep_history(app, send_id, "send-approved")


async def test_reject_ends_the_send_with_the_reason_and_nothing_is_delivered(app: Mailgate) -> None:
    send_id = await submit(app)
    state = await app.sends.decide(
        send_id, Decision(decision="reject", approver="carol", reason="wrong tone", channel="test")
    )
    assert state.status == "rejected"
    assert state.reason == "wrong tone"
    assert app.sandbox.deliveries(app.settings.default_mailbox) == []
    await keep_history(app, send_id, "send-rejected")


async def test_edits_are_delivered_and_the_original_stays_visible(app: Mailgate) -> None:
    send_id = await submit(app)
    await app.sends.decide(
        send_id, approve(subject="Q3 numbers", body="Edited body", to=["Robert <robert@example.com>"])
    )
    state = await wait_for_status(app, send_id, ["sent"])

    assert state.original.subject == "Quarterly numbers"
    assert state.approved is not None and state.approved.subject == "Q3 numbers"
    copies = app.sandbox.deliveries(app.settings.default_mailbox)
    assert [(c.recipient, c.subject) for c in copies] == [("robert@example.com", "Q3 numbers")]
    await keep_history(app, send_id, "send-edited")


async def test_second_decision_is_refused_naming_who_decided(app: Mailgate) -> None:
    send_id = await submit(app)
    await app.sends.decide(send_id, approve("alice"))
    with pytest.raises(Conflict, match="already approved by alice"):
        await app.sends.decide(send_id, Decision(decision="reject", approver="bob", reason="no", channel="test"))
    await wait_for_status(app, send_id, ["sent"])
    with pytest.raises(Conflict, match="approved by alice"):
        await app.sends.decide(send_id, approve("bob"))
    assert len(app.sandbox.deliveries(app.settings.default_mailbox)) == 1


async def test_the_requester_cannot_approve_its_own_send(app: Mailgate) -> None:
    send_id = await submit(app)
    with pytest.raises(Conflict, match="requested this send and may not decide it"):
        await app.sends.decide(send_id, approve("agent"))
    assert (await app.sends.status(send_id)).status == "pending_approval"


async def test_cancel_before_decision_stops_the_send(app: Mailgate) -> None:
    send_id = await submit(app)
    # A query is answered after the first task: the send waits for its human when the cancel comes
    # (a cancel in the first task is send-cancelled-before-first-task's path).
    await wait_for_status(app, send_id, {"pending_approval"})
    state = await app.sends.cancel(send_id)
    assert state.status == "cancelled"
    with pytest.raises(Conflict, match="is cancelled"):
        await app.sends.decide(send_id, approve())
    with pytest.raises(Conflict, match="can no longer be cancelled"):
        await app.sends.cancel(send_id)
    assert app.sandbox.deliveries(app.settings.default_mailbox) == []
    await keep_history(app, send_id, "send-cancelled")


async def test_signalled_decisions_are_deduplicated_by_id(app: Mailgate) -> None:
    send_id = await submit(app)
    decision = approve("dana").model_copy(update={"decision_id": "hook-1", "channel": "webhook"})
    decision = signed_decision(send_id, decision, proof_key(app.secrets.secret_key))
    for _ in range(5):
        await app.sends._handle(send_id).signal("decide_signal", decision)
    state = await wait_for_status(app, send_id, ["sent"])
    assert [e.kind for e in state.events].count("approved") == 1
    assert len(app.sandbox.deliveries(app.settings.default_mailbox)) == 1
    await keep_history(app, send_id, "send-signalled")


async def test_autonomous_mailbox_sends_at_once(app: Mailgate) -> None:
    await app.mailboxes.set_mode(app.settings.default_mailbox, "autonomous", actor="ops", role="human")
    result = await app.sends.submit(mailbox=app.settings.default_mailbox, to=["x@example.com"], subject="now", body="b")
    assert result.status == "sending"
    await wait_for_status(app, result.send_id, ["sent"])
    assert len(app.sandbox.deliveries(app.settings.default_mailbox)) == 1
    await keep_history(app, result.send_id, "send-autonomous")
    await keep_history(app, mailbox_workflow_id(app.settings.default_mailbox), "mailbox-autonomous")


async def test_mailbox_tightened_to_read_only_blocks_an_approved_send(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    send_id = await submit(app)
    await app.mailboxes.set_mode(mailbox, "read_only", actor="agent", role="agent")
    await app.sends.decide(send_id, approve())
    state = await wait_for_status(app, send_id, ["blocked"])
    assert "read_only" in state.reason
    assert app.sandbox.deliveries(mailbox) == []
    await keep_history(app, send_id, "send-blocked")
