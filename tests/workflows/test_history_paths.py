"""Paths of the send and mailbox workflows that the replay test needs histories of, each checked
here for what it does: re-gating, a send stopped mid-wait, a mailbox's whole life.

With MAILGATE_CAPTURE_HISTORIES=1 they write tests/histories/*.json (see test_replay.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from server.app import Mailgate
from server.validation import PolicyChanges
from tests.support.histories import keep_history
from tests.support.wait import wait_for_status
from workflows.ids import mailbox_workflow_id
from workflows.models import Decision


async def test_a_send_re_gated_by_a_stricter_mailbox_waits_for_a_human(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.set_mode(mailbox, "autonomous", actor="ops", role="human")
    send_at = datetime.now(UTC) + timedelta(seconds=2)
    sent = await app.sends.submit(mailbox=mailbox, to=["bob@example.com"], subject="Later", body="b", send_at=send_at)
    assert sent.status == "scheduled"
    await app.mailboxes.set_mode(mailbox, "gated_send", actor="agent", role="agent")
    state = await wait_for_status(app, sent.send_id, {"pending_approval"}, timeout=20)
    assert any(e.kind == "gated" for e in state.events)
    assert app.sandbox.deliveries(mailbox) == []
    await app.sends.decide(sent.send_id, Decision(decision="approve", approver="alice"))
    await wait_for_status(app, sent.send_id, {"sent"})
    await keep_history(app, sent.send_id, "send-regated")


async def test_sends_stopped_mid_wait_keep_their_state(app: Mailgate) -> None:
    """Histories that end while a send waits (for a human, for its time): replay resumes them."""
    mailbox = app.settings.default_mailbox
    pending = await app.sends.submit(mailbox=mailbox, to=["bob@example.com"], subject="Waiting", body="b")
    later = datetime.now(UTC) + timedelta(days=3)
    scheduled = await app.sends.submit(
        mailbox=mailbox, to=["bob@example.com"], subject="Later", body="b", send_at=later, approve_at_send_time=True
    )
    assert (await app.sends.status(pending.send_id)).status == "pending_approval"
    assert (await app.sends.status(scheduled.send_id)).status == "scheduled"
    await keep_history(app, pending.send_id, "send-pending-midwait")
    await keep_history(app, scheduled.send_id, "send-scheduled-midwait")
    for send in (pending, scheduled):
        assert (await app.sends.cancel(send.send_id, actor="agent")).status == "cancelled"
    await keep_history(app, scheduled.send_id, "send-scheduled-for-approval-cancelled")


async def test_a_mailbox_is_configured_reviewed_and_upgraded(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.configure(mailbox, PolicyChanges(reviewers=["rita@example.com"], rate_per_hour=50), actor="ops")
    await app.mailboxes.set_mode(mailbox, "monitored", actor="ops", role="human")
    sent = await app.sends.submit(mailbox=mailbox, to=["bob@example.com"], subject="Monitored", body="b")
    await wait_for_status(app, sent.send_id, {"sent"})

    async def reviewed() -> bool:
        return any(r.send_id == sent.send_id for r in await app.mailboxes.reviews(mailbox))

    for _ in range(100):
        if await reviewed():
            break
        await asyncio.sleep(0.05)
    await app.mailboxes.ack_review(mailbox, sent.send_id, actor="rita@example.com")
    assert await app.mailboxes.reviews(mailbox) == []

    await app.mailboxes.set_mode(mailbox, "gated_send", actor="agent", role="agent")
    upgrade = await app.mailboxes.request_upgrade(mailbox, "monitored", "weekly report", requested_by="agent")
    config = await app.mailboxes.apply_upgrade(mailbox, upgrade.code, actor="agent")
    assert config.mode == "monitored"
    await keep_history(app, mailbox_workflow_id(mailbox), "mailbox-configured-reviewed-upgraded")
