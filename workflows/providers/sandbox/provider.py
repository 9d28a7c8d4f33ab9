"""The embedded mail sandbox: the provider over the SQLite mail store (``store.py``) on this machine.

Mail to a sandbox mailbox lands in its inbox; mail to any other address is captured in the
store and never leaves the machine. Each (Message-ID, recipient) pair is stored once, so a
retried delivery can never make a second copy. Inbound mail for a ``gated_all`` mailbox is
stored held: invisible to every agent read until a human releases it. A message carrying
mailgate's notice mark (``workflows/trust/marks.py``) is stored in the ``notices`` folder, which no
agent read includes. Only mailgate's own delivery path (``SandboxProvider.send``) files a copy
in the sender's Sent folder: mail that arrives over SMTP is inbound, whatever its envelope says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from workflows.mail.mime import build_message, envelope_recipients
from workflows.models import DeliveryReceipt, DeliveryRequest
from workflows.providers.base import (
    EmailProvider,
    InboundHooks,
    NoHooks,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from workflows.providers.sandbox.store import SandboxStore
from workflows.read_models import Action, Changes, EmailChange, EmailPage, EmailQuery, EmailSummary, StoredEmail


class UnknownHold(Exception):
    """Whether a mailbox holds inbound mail could not be found out (Temporal unreachable)."""


class SandboxProvider(EmailProvider):
    name = "sandbox"

    def __init__(self, store: SandboxStore, hooks: InboundHooks | None = None) -> None:
        self.store = store
        self.hooks: InboundHooks = hooks or NoHooks()

    async def send(self, request: DeliveryRequest) -> DeliveryReceipt:
        recipients = envelope_recipients(request)
        if not recipients:
            raise PermanentDeliveryError("the email has no recipients")
        raw = build_message(request).as_bytes()
        try:
            # The one path that files a Sent copy. A system notice stays out of the sender's Sent
            # folder, where the agent could read it.
            await self._store(raw, request.mailbox, recipients, keep_sent=not request.system)
        except UnknownHold as err:
            raise TemporaryDeliveryError(str(err)) from err
        return DeliveryReceipt(message_id=request.message_id, recipients=tuple(recipients))

    async def receive(self, raw: bytes, sender: str, recipients: Sequence[str]) -> list[str]:
        """Store mail that arrived from outside (the SMTP listener) for its recipients; returns the
        new ones. It is inbound, never our own sent mail, whatever ``sender`` (the envelope) says.

        Raises UnknownHold when mailgate cannot tell whether a mailbox holds its inbound mail:
        then nothing is stored, and the sender should try again later.
        """
        return await self._store(raw, sender, recipients, keep_sent=False)

    async def _store(self, raw: bytes, sender: str, recipients: Sequence[str], *, keep_sent: bool) -> list[str]:
        local = await asyncio.to_thread(self.store.local_among, recipients)
        held: list[str] = []
        for mailbox in local:
            try:
                if await self.hooks.holds(mailbox):
                    held.append(mailbox)
            except Exception as exc:
                raise UnknownHold(f"cannot tell whether {mailbox} holds inbound mail: {exc}") from exc
        before = (await asyncio.to_thread(self.store.changes, "", None)).cursor
        fresh = await asyncio.to_thread(self.store.deliver, raw, sender, recipients, held_for=held, keep_sent=keep_sent)
        woken = [m for m in local if m in fresh and m not in held]
        if woken:
            await self.hooks.arrived(woken, before)
        return fresh

    async def list_emails(self, mailbox: str, query: EmailQuery) -> EmailPage:
        return await asyncio.to_thread(self.store.list_emails, mailbox, query)

    async def search(self, mailbox: str, query: str, limit: int, cursor: str | None) -> EmailPage:
        return await asyncio.to_thread(self.store.search, mailbox, query, limit, cursor)

    async def fetch_email(self, mailbox: str, email_id: str, *, include_held: bool = False) -> StoredEmail:
        return await asyncio.to_thread(self.store.fetch_email, mailbox, email_id, include_held=include_held)

    async def change_email(self, mailbox: str, email_id: str, change: EmailChange, actor: str) -> EmailSummary:
        before = (await asyncio.to_thread(self.store.changes, "", None)).cursor
        changed = await asyncio.to_thread(self.store.change_email, mailbox, email_id, change, actor)
        if change == "release":
            await self.hooks.arrived([changed.mailbox], before)
        return changed

    async def changes(self, mailbox: str, cursor: str | None, limit: int = 100) -> Changes:
        return await asyncio.to_thread(self.store.changes, mailbox, cursor, limit)

    async def manage(self, mailbox: str, email_id: str, action: Action, target: str | None, actor: str) -> str:
        return await asyncio.to_thread(self.store.manage, mailbox, email_id, action, target, actor)

    async def save_draft(self, mailbox: str, raw: bytes, draft_id: str | None = None) -> str:
        return await asyncio.to_thread(self.store.save_draft, mailbox, raw, draft_id)

    async def drafts(self, mailbox: str, limit: int = 100) -> list[EmailSummary]:
        return await asyncio.to_thread(self.store.drafts, mailbox, limit)

    async def draft(self, mailbox: str, draft_id: str) -> StoredEmail:
        return await asyncio.to_thread(self.store.draft, mailbox, draft_id)

    async def delete_draft(self, mailbox: str, draft_id: str) -> None:
        await asyncio.to_thread(self.store.delete_draft, mailbox, draft_id)

    async def find_reply(self, mailbox: str, message_id: str) -> EmailSummary | None:
        return await asyncio.to_thread(self.store.find_reply, mailbox, message_id)

    async def create_mailbox(self, address: str) -> None:
        await asyncio.to_thread(self.store.create_mailbox, address)
