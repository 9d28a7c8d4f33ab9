"""Drafts the agent saves for a human to edit and send from their own mail client.

Saving a draft sends nothing, so every mode but read_only allows it; each change is audited.
A reply draft carries In-Reply-To and References, so the human's client threads it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from pydantic import BaseModel

from server.errors import Conflict, InvalidInput, NotFound
from server.inbox import Inbox
from server.mailboxes import Mailboxes
from server.validation import check_text, parse_mailbox, parse_recipients, reply_recipients, safe_subject
from server.views import person
from workflows.mail.addresses import MAX_BODY_BYTES, MAX_SUBJECT_CHARS
from workflows.mail.parsing import parse_email
from workflows.mail.threads import reply_references
from workflows.models import EmailAddress
from workflows.providers.base import EmailNotFound, ProviderSet


class Draft(BaseModel):
    draft_id: str
    mailbox: str
    to: list[str]
    cc: list[str] = []
    subject: str
    body: str = ""
    in_reply_to: str = ""
    saved_at: datetime


class DraftList(BaseModel):
    mailbox: str
    drafts: list[Draft]


def _message(
    mailbox: str,
    to: tuple[EmailAddress, ...],
    cc: tuple[EmailAddress, ...],
    subject: str,
    body: str,
    in_reply_to: str,
    references: tuple[str, ...],
) -> bytes:
    check_text(subject, "subject", MAX_SUBJECT_CHARS)
    if len(body.encode()) > MAX_BODY_BYTES:
        raise InvalidInput(f"body: at most {MAX_BODY_BYTES} bytes")
    message = EmailMessage()
    message["From"] = mailbox
    if to:
        message["To"] = ", ".join(str(a) for a in to)
    if cc:
        message["Cc"] = ", ".join(str(a) for a in cc)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=mailbox.rpartition("@")[2])
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = " ".join(references)
    message.set_content(body)
    return message.as_bytes()


class Drafts:
    def __init__(self, providers: ProviderSet, mailboxes: Mailboxes, inbox: Inbox) -> None:
        self._providers = providers
        self._mailboxes = mailboxes
        self._inbox = inbox

    async def _writable(self, mailbox: str, what: str) -> str:
        address = parse_mailbox(mailbox)
        config = await self._mailboxes.config(address)
        if config.mode == "read_only":
            raise Conflict(
                f"mailbox {address} is read_only: it may not {what}. Only a human can change its mode "
                "(request_upgrade asks one)."
            )
        return address

    async def create(
        self,
        mailbox: str,
        *,
        to: list[str] | None,
        subject: str,
        body: str,
        cc: list[str] | None = None,
        reply_to_email_id: str | None = None,
    ) -> Draft:
        address = await self._writable(mailbox, "save drafts")
        recipients, copies = parse_recipients(to, "to"), parse_recipients(cc, "cc")
        parent = ""
        chain: tuple[str, ...] = ()
        if reply_to_email_id:
            _, stored = await self._inbox._fetch(address, reply_to_email_id)
            parsed = parse_email(stored.raw)
            if not recipients:
                found, _ = reply_recipients(parsed, address, from_us=stored.summary.folder == "sent", reply_all=False)
                recipients = tuple(found)
            subject = subject or safe_subject(parsed.subject)
            parent = parsed.message_id or stored.summary.message_id
            chain = reply_references(parsed.references, parsed.in_reply_to, parent)
        if not subject.strip():
            raise InvalidInput("subject: a draft needs a subject (or reply_to_email_id, which gives Re: its subject)")
        raw = _message(address, recipients, copies, subject, body, parent, chain)
        try:
            draft_id = await self._providers.for_mailbox(address).save_draft(address, raw)
        except ValueError as exc:
            raise Conflict(str(exc)) from exc
        await self._mailboxes.record_action(address, "draft_created", "agent", f"draft {draft_id}: {subject[:200]}")
        return await self.get(address, draft_id)

    async def get(self, mailbox: str, draft_id: str) -> Draft:
        address = parse_mailbox(mailbox)
        try:
            stored = await self._providers.for_mailbox(address).draft(address, draft_id)
        except EmailNotFound as exc:
            raise NotFound(f"{exc}; list_drafts shows your drafts") from exc
        parsed = parse_email(stored.raw)
        return Draft(
            draft_id=stored.summary.email_id,
            mailbox=address,
            to=[person(a) for a in parsed.to],
            cc=[person(a) for a in parsed.cc],
            subject=parsed.subject,
            body=parsed.text,
            in_reply_to=parsed.in_reply_to,
            saved_at=stored.summary.received_at,
        )

    async def listing(self, mailbox: str, limit: int = 50) -> DraftList:
        address = parse_mailbox(mailbox)
        await self._mailboxes.config(address)
        found = await self._providers.for_mailbox(address).drafts(address, limit)
        drafts = [
            Draft(
                draft_id=d.email_id,
                mailbox=address,
                to=[person(a) for a in d.to],
                cc=[person(a) for a in d.cc],
                subject=d.subject,
                in_reply_to=d.in_reply_to,
                saved_at=d.received_at,
            )
            for d in found
        ]
        return DraftList(mailbox=address, drafts=drafts)

    async def update(
        self,
        mailbox: str,
        draft_id: str,
        *,
        to: list[str] | None = None,
        cc: list[str] | None = None,
        subject: str | None = None,
        body: str | None = None,
    ) -> Draft:
        address = await self._writable(mailbox, "change drafts")
        provider = self._providers.for_mailbox(address)
        try:
            stored = await provider.draft(address, draft_id)
        except EmailNotFound as exc:
            raise NotFound(f"{exc}; list_drafts shows your drafts") from exc
        old = parse_email(stored.raw)
        raw = _message(
            address,
            parse_recipients(to, "to") if to is not None else old.to,
            parse_recipients(cc, "cc") if cc is not None else old.cc,
            subject if subject is not None else old.subject,
            body if body is not None else old.text,
            old.in_reply_to,
            old.references,
        )
        new_id = await provider.save_draft(address, raw, draft_id)
        await self._mailboxes.record_action(address, "draft_updated", "agent", f"draft {new_id}")
        return await self.get(address, new_id)

    async def delete(self, mailbox: str, draft_id: str) -> str:
        address = await self._writable(mailbox, "delete drafts")
        try:
            await self._providers.for_mailbox(address).delete_draft(address, draft_id)
        except EmailNotFound as exc:
            raise NotFound(f"{exc}; list_drafts shows your drafts") from exc
        await self._mailboxes.record_action(address, "draft_deleted", "agent", f"draft {draft_id}")
        return draft_id.strip()
