"""Front-door proofs inside the workflows: what a forged decision meets, and replay of proven ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.worker import Replayer

from server.app import Mailgate
from tests.support.wait import wait_for_status
from workflows.ids import mailbox_workflow_id
from workflows.mailbox import MailboxWorkflow
from workflows.models import (
    Attachment,
    Decision,
    DeliveryRequest,
    Edits,
    EmailAddress,
    EmailDraft,
    MailboxPolicy,
    ModeChange,
    SendRequest,
)
from workflows.notices import Notice, light_draft
from workflows.send import SendEmailWorkflow
from workflows.temporal import data_converter
from workflows.trust import proofs
from workflows.trust.notice_proofs import notice_problem
from workflows.trust.proofs import proof_key, sign_change, sign_decision, sign_request, warrant_for, warrant_problem
from workflows.worker import WORKFLOWS


async def submit(app: Mailgate) -> str:
    result = await app.sends.submit(mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject="s", body="b")
    return result.send_id


@pytest.mark.parametrize("how", ["signal", "update"])
async def test_a_proven_decision_replays_without_nondeterminism(app: Mailgate, how: str) -> None:
    send_id = await submit(app)
    decision = Decision(decision="approve", approver="alice", channel="test", decision_id=f"{how}-1")
    if how == "signal":
        assert await app.sends.signal_decision(send_id, decision) == "accepted"
    else:
        await app.sends.decide(send_id, decision)
    await wait_for_status(app, send_id, ["sent"])
    history = await app.client.get_workflow_handle(send_id).fetch_history()
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter())
    await replayer.replay_workflow(history)


async def test_a_forged_signal_is_refused_and_recorded_and_the_send_keeps_waiting(app: Mailgate) -> None:
    send_id = await submit(app)
    handle = app.client.get_workflow_handle_for(SendEmailWorkflow.run, send_id)
    await handle.signal(SendEmailWorkflow.decide_signal, Decision(decision="approve", approver="alice"))
    state = await handle.query(SendEmailWorkflow.state)
    for _ in range(100):
        if any(e.kind == "decision_refused" for e in state.events):
            break
        state = await handle.query(SendEmailWorkflow.state)
    assert state.status == "pending_approval" and state.decision is None
    assert [e.kind for e in state.events][-1] == "decision_refused"
    history = await handle.fetch_history()
    await Replayer(workflows=WORKFLOWS, data_converter=data_converter()).replay_workflow(history)


async def test_a_loosening_needs_a_fresh_unused_proof_and_its_history_replays(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    box_id = mailbox_workflow_id(mailbox)
    handle = app.client.get_workflow_handle_for(MailboxWorkflow.run, box_id)
    await app.mailboxes.set_mode(mailbox, "autonomous", actor="ops", role="human")
    # Tightening needs no proof; loosening straight in Temporal is refused and recorded.
    await handle.execute_update(MailboxWorkflow.set_mode, ModeChange(mode="gated_send", actor="x", role="human"))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(MailboxWorkflow.set_mode, ModeChange(mode="autonomous", actor="x", role="human"))
    assert "no valid proof" in str(refused.value.cause)
    assert (await handle.query(MailboxWorkflow.describe)).audit[-1].kind == "change_refused"
    # A proof counts once: replayed from history, the same signed change is refused.
    key = proof_key(app.secrets.secret_key)
    signed = sign_change(
        key, "mode", box_id, ModeChange(mode="monitored", actor="ops", role="human"), datetime.now(UTC)
    )
    assert (await handle.execute_update(MailboxWorkflow.set_mode, signed)).mode == "monitored"
    await app.mailboxes.set_mode(mailbox, "gated_send", actor="ops", role="human")
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(MailboxWorkflow.set_mode, signed)
    assert (await handle.query(MailboxWorkflow.describe)).config.mode == "gated_send"
    # And a stale one (made more than ten minutes ago) too.
    old = sign_change(
        key,
        "mode",
        box_id,
        ModeChange(mode="autonomous", actor="ops", role="human"),
        datetime.now(UTC) - timedelta(minutes=11),
    )
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(MailboxWorkflow.set_mode, old)
    assert (await handle.query(MailboxWorkflow.describe)).config.mode == "gated_send"
    history = await handle.fetch_history()
    await Replayer(workflows=WORKFLOWS, data_converter=data_converter()).replay_workflow(history)


def _delivery(
    key: bytes, *, mode: str = "gated_send", approvers: tuple[str, ...] = ()
) -> tuple[SendRequest, DeliveryRequest]:
    draft = EmailDraft(to=(EmailAddress(address="bob@example.com"),), subject="s", body="b")
    request = sign_request(
        key,
        SendRequest(
            send_id="send-aaaaaaaaaaaaaaaaaaaa",
            mailbox="agent@mailgate.local",
            requester="agent",
            draft=draft,
            message_id="<m@x>",
            content_hash="h",
            policy=MailboxPolicy(mode=mode, approvers=approvers),
            requested_at=datetime.now(UTC),
            approval_timeout=timedelta(hours=1),
        ),
        datetime.now(UTC),
    )
    delivery = DeliveryRequest(
        send_id=request.send_id, mailbox=request.mailbox, draft=draft, message_id="<m@x>", date=datetime.now(UTC)
    )
    return request, delivery


def test_the_delivery_check_wants_the_request_and_the_approval_exactly() -> None:
    key, other = proof_key(b"k" * 32), proof_key(b"o" * 32)
    request, delivery = _delivery(key, approvers=("alice",))
    sid = request.send_id

    def problem(decision: Decision | None, draft: EmailDraft | None = None, mode: str = "gated_send") -> str | None:
        warrant = warrant_for(request, decision)
        ask = delivery.model_copy(update={"warrant": warrant, "draft": draft or delivery.draft})
        return warrant_problem(key, ask, sid, mode)  # type: ignore[arg-type]

    def signed(decision: Decision, with_key: bytes = key) -> Decision:
        return sign_decision(with_key, sid, decision, datetime.now(UTC))

    approve = Decision(decision="approve", approver="alice")
    assert problem(signed(approve)) is None
    assert problem(None) == "the send needs a human's approval and has none"
    assert "no valid proof" in str(problem(approve))
    assert "no valid proof" in str(problem(signed(approve, other)))
    assert "no valid proof" in str(problem(signed(approve).model_copy(update={"approver": "bob"})))
    assert "not an approver" in str(problem(signed(Decision(decision="approve", approver="bob"))))
    assert problem(signed(Decision(decision="reject", approver="alice"))) is not None
    # The email must be the one requested, or exactly as the approver edited it.
    changed = delivery.draft.model_copy(update={"body": "pay mallory"})
    assert problem(signed(approve), changed) == "the email to deliver is not the one requested or approved"
    edits = Edits(body="pay mallory", cc=(EmailAddress(address="c@example.com"),))
    edited = edits.apply(delivery.draft)
    assert problem(signed(approve.model_copy(update={"edits": edits})), edited) is None
    assert problem(signed(approve.model_copy(update={"edits": Edits(body="pay mallory")})), edited) is not None
    # A request signed for another send id, or not signed at all, is refused before anything else.
    assert "no valid proof" in str(
        warrant_problem(
            key, delivery.model_copy(update={"warrant": warrant_for(request, None)}), "send-other", "autonomous"
        )
    )
    unsigned = request.model_copy(update={"proof": None})
    assert "no valid proof" in str(
        warrant_problem(key, delivery.model_copy(update={"warrant": warrant_for(unsigned, None)}), sid, "autonomous")
    )


def test_an_autonomous_request_needs_no_approval_until_its_mailbox_is_gated() -> None:
    key = proof_key(b"k" * 32)
    request, delivery = _delivery(key, mode="autonomous")
    ask = delivery.model_copy(update={"warrant": warrant_for(request, None)})
    assert warrant_problem(key, ask, request.send_id, "autonomous") is None
    assert warrant_problem(key, ask, request.send_id, "gated_all") == "the send needs a human's approval and has none"


@pytest.mark.parametrize("attachments", [0, 2])
def test_a_request_is_signed_digesting_its_draft_once_and_both_proofs_check(
    attachments: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every send signs its request on the agent's call path (issue 20): the draft is digested once
    for both proofs, again only when attachments make the notices' draft differ."""
    key, now = proof_key(b"k" * 32), datetime.now(UTC)
    files = tuple(
        Attachment(filename=f"f{n}.txt", content_type="text/plain", content_b64="aGk=", size=2)
        for n in range(attachments)
    )
    draft = EmailDraft(
        to=(EmailAddress(address="bob@example.com", name="Bob"),), subject="s", body="b", attachments=files
    )
    digested: list[EmailDraft] = []
    digests = proofs.draft_digests

    def counting(draft: EmailDraft) -> dict[str, str]:
        digested.append(draft)
        return digests(draft)

    monkeypatch.setattr(proofs, "draft_digests", counting)
    request = sign_request(
        key,
        SendRequest(
            send_id="send-aaaaaaaaaaaaaaaaaaaa",
            mailbox="agent@mailgate.local",
            from_name="Agent",
            requester="agent",
            draft=draft,
            message_id="<m@x>",
            content_hash="h",
            policy=MailboxPolicy(mode="gated_send", approvers=("alice",)),
            requested_at=now,
            approval_timeout=timedelta(hours=1),
        ),
        now,
    )
    assert len(digested) == (2 if attachments else 1)
    monkeypatch.undo()
    # What the delivery activity and the notice workflow check accepts both proofs.
    approval = sign_decision(key, request.send_id, Decision(decision="approve", approver="alice"), now)
    delivery = DeliveryRequest(
        send_id=request.send_id,
        mailbox=request.mailbox,
        from_name=request.from_name,
        draft=draft,
        message_id=request.message_id,
        date=now,
        warrant=warrant_for(request, approval),
    )
    assert warrant_problem(key, delivery, request.send_id, "gated_send") is None
    notice = Notice(
        notice_id=f"notify-{request.send_id}-approval",
        kind="approval_requested",
        mailbox=request.mailbox,
        at=now,
        send_id=request.send_id,
        requester=request.requester,
        draft=light_draft(draft),
        proof=request.notice_proof,
    )
    assert notice_problem(key, notice) is None
    assert notice_problem(proof_key(b"o" * 32), notice) is not None
