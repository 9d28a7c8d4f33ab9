"""Mail arriving in the default mailbox's sandbox, and a send already delivered, for inbox tests."""

from __future__ import annotations

import uuid

from server.app import Mailgate
from tests.support.wait import wait_for_status
from workflows.models import Decision
from workflows.providers.sandbox.provider import SandboxProvider


def sandbox(app: Mailgate) -> SandboxProvider:
    provider = app.providers.default
    assert isinstance(provider, SandboxProvider)
    return provider


async def receive(
    app: Mailgate,
    *,
    subject: str = "Question",
    extra: str = "",
    body: str = "Can you help?",
    sender: str = "Bob <bob@example.com>",
    to: str | None = None,
) -> str:
    message_id = f"<{uuid.uuid4().hex}@example.com>"
    mailbox = app.settings.default_mailbox
    raw = (
        f"Message-ID: {message_id}\r\nFrom: {sender}\r\nTo: {to or mailbox}\r\nSubject: {subject}\r\n{extra}"
        f"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()
    await sandbox(app).receive(raw, "bob@example.com", [mailbox])
    return message_id


def approve() -> Decision:
    return Decision(decision="approve", approver="alice", channel="test")


async def sent_send(app: Mailgate, subject: str = "Proposal") -> str:
    """A send from the default mailbox to bob, approved and delivered; returns its id."""
    mailbox = app.settings.default_mailbox
    sent = await app.sends.submit(mailbox=mailbox, to=["bob@example.com"], subject=subject, body="What do you think?")
    await app.sends.decide(sent.send_id, approve())
    await wait_for_status(app, sent.send_id, ["sent"])
    return sent.send_id
