"""Inbound operations for every front door: reading, threads, replies, held mail, watchers.

Reads go straight to the mailbox's provider (no Temporal round trip), so listings stay fast;
replies go through `Sends.submit`, so they get the same gate, policies and idempotency as any
send. Waiting for a reply is server/reply_waits.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client

from server.errors import Conflict, InvalidInput, NotFound
from server.mailboxes import Mailboxes
from server.sends import Sends
from server.settings import Settings
from server.validation import (
    AttachmentInput,
    check_limit,
    parse_mailbox,
    parse_since,
    reply_recipients,
    safe_subject,
)
from server.views import (
    UNTRUSTED_WARNING,
    AttachmentInfo,
    EmailView,
    InboxPage,
    SendResult,
    ThreadView,
    listing,
    person,
    thread_messages,
)
from workflows.mail.parsing import parse_email_async
from workflows.mail.parts import AttachmentPart
from workflows.mail.richtext import quote_of
from workflows.mail.threads import reply_references
from workflows.models import BodyFormat
from workflows.providers.base import EmailNotFound, EmailProvider, ProviderSet
from workflows.read_models import EmailChange, EmailQuery, EmailSummary, IntakeConfig, StoredEmail
from workflows.watcher import WatcherConfig
from workflows.watcher_client import signal_watcher


def require_inbox(address: str, provider: EmailProvider) -> None:
    if not provider.has_inbox:
        raise Conflict(
            f"mailbox {address} is send-only: it has no inbox (no imap_url is configured), so there is no "
            "mail to list, read, reply to or wait for; it can still send with durable_send"
        )


class Inbox:
    def __init__(
        self, client: Client, settings: Settings, providers: ProviderSet, mailboxes: Mailboxes, sends: Sends
    ) -> None:
        self._client = client
        self._settings = settings
        self._providers = providers
        self._mailboxes = mailboxes
        self._sends = sends
        self._known: set[str] = set()

    async def _mailbox(self, mailbox: str) -> tuple[str, EmailProvider]:
        """The mailbox's address and provider; refuses addresses that are no mailgate mailbox."""
        address = parse_mailbox(mailbox)
        if address.lower() not in self._known:
            await self._mailboxes.config(address)  # raises NotFound; mailboxes are never deleted
            self._known.add(address.lower())
        provider = self._providers.for_mailbox(address)
        require_inbox(address, provider)
        return address, provider

    async def check(
        self,
        mailbox: str,
        *,
        unread_only: bool = False,
        since: str | None = None,
        sender: str | None = None,
        query: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> InboxPage:
        address, provider = await self._mailbox(mailbox)
        check_limit(limit)
        email_query = EmailQuery(
            unread_only=unread_only,
            since=parse_since(since),
            sender=sender.strip() or None if sender else None,
            search=query.strip() or None if query else None,
            limit=limit,
            cursor=cursor,
        )
        try:
            page = await provider.list_emails(address, email_query)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        return InboxPage(mailbox=address, emails=[listing(e) for e in page.emails], next_cursor=page.next_cursor)

    async def search(self, mailbox: str, query: str, *, limit: int = 20, cursor: str | None = None) -> InboxPage:
        address, provider = await self._mailbox(mailbox)
        check_limit(limit)
        if not query.strip():
            raise InvalidInput('query: empty; for example: invoice from:bob@example.com after:2026-11-01 "due date"')
        try:
            page = await provider.search(address, query, limit, cursor)
        except ValueError as exc:
            raise InvalidInput(f"{exc}") from exc
        return InboxPage(mailbox=address, emails=[listing(e) for e in page.emails], next_cursor=page.next_cursor)

    async def _fetch(self, mailbox: str, email_id: str, *, include_held: bool = False) -> tuple[str, StoredEmail]:
        address, provider = await self._mailbox(mailbox)
        try:
            return address, await provider.fetch_email(address, email_id.strip(), include_held=include_held)
        except EmailNotFound as exc:
            raise NotFound(
                str(exc),
                next_steps={
                    "mcp": "check_inbox lists the emails of a mailbox",
                    "cli": "`mailgate inbound list` lists the held emails",
                    "api": "GET /api/inbound lists the held emails",
                },
            ) from exc

    async def read(
        self, mailbox: str, email_id: str, *, mark_read: bool = True, include_held: bool = False
    ) -> EmailView:
        """What read_email gives the agent; ``include_held`` shows a held email to the human deciding on it."""
        address, stored = await self._fetch(mailbox, email_id, include_held=include_held)
        parsed = await parse_email_async(stored.raw)
        email = stored.summary
        if mark_read and email.unread:
            await self._providers.for_mailbox(address).change_email(address, email.email_id, "read", "agent")
        inbound = email.folder == "inbox"
        return EmailView(
            email_id=email.email_id,
            mailbox=address,
            folder=email.folder,
            thread_id=email.thread_id,
            message_id=email.message_id,
            sender=person(parsed.sender),
            reply_to=[person(a) for a in parsed.reply_to],
            to=[person(a) for a in parsed.to],
            cc=[person(a) for a in parsed.cc],
            subject=parsed.subject,
            date=parsed.date,
            received_at=email.received_at,
            text=parsed.text,
            converted_from_html=parsed.from_html,
            attachments=[
                AttachmentInfo(
                    index=a.index,
                    filename=a.filename,
                    content_type=a.content_type,
                    size=stored.attachment_sizes.get(a.filename, a.size),
                    inline=a.inline,
                )
                for a in parsed.attachments
            ],
            in_reply_to=parsed.in_reply_to,
            untrusted=inbound,
            warning=UNTRUSTED_WARNING if inbound else "",
        )

    async def attachment(self, mailbox: str, email_id: str, filename: str) -> AttachmentPart:
        address, stored = await self._fetch(mailbox, email_id)
        parts = (await parse_email_async(stored.raw)).attachments
        wanted = filename.strip()
        for part in parts:
            if part.filename == wanted or str(part.index) == wanted:
                # Some providers (MultiMail) name attachments in the email and download one on demand.
                try:
                    content = await self._providers.for_mailbox(address).fetch_attachment(
                        address, stored.summary.email_id, part.index
                    )
                except EmailNotFound as exc:
                    raise NotFound(str(exc)) from exc
                return part if content is None else dataclasses.replace(part, content=content)
        names = ", ".join(p.filename for p in parts) or "none"
        raise NotFound(f"email {email_id} has no attachment named {wanted!r} (its attachments: {names})")

    async def thread(self, mailbox: str, thread_id: str, *, max_chars: int = 2000, concise: bool = True) -> ThreadView:
        address, provider = await self._mailbox(mailbox)
        page = await provider.list_emails(
            address, EmailQuery(folder=None, thread_id=thread_id, oldest_first=True, limit=1000, with_text=True)
        )
        if not page.emails:
            raise NotFound(f"no thread {thread_id!r} in mailbox {address}; check_inbox shows each email's thread_id")
        # Up to 1,000 messages of strangers' text: laid out in a worker thread, off the event loop.
        messages = await asyncio.to_thread(thread_messages, page.emails, max_chars, concise)
        return ThreadView(
            mailbox=address, thread_id=page.emails[0].thread_id, subject=page.emails[0].subject, messages=messages
        )

    async def reply(
        self,
        mailbox: str,
        email_id: str,
        body: str,
        *,
        reply_all: bool = False,
        idempotency_key: str | None = None,
        attachments: Sequence[AttachmentInput] | None = None,
        send_at: str | None = None,
        approve_at_send_time: bool = False,
        requester: str = "agent",
        body_format: BodyFormat = "text",
        from_alias: str | None = None,
    ) -> SendResult:
        address, stored = await self._fetch(mailbox, email_id)
        parsed = await parse_email_async(stored.raw)
        to, cc = reply_recipients(parsed, address, from_us=stored.summary.folder == "sent", reply_all=reply_all)
        if not to:
            shown = person(parsed.sender) or "(none)"
            raise InvalidInput(f"cannot reply to email {email_id}: its sender {shown!r} is not a valid address")
        message_id = parsed.message_id or stored.summary.message_id
        return await self._sends.submit(
            mailbox=address,
            to=[str(a) for a in to],
            cc=[str(a) for a in cc],
            subject=safe_subject(parsed.subject),
            body=body,
            idempotency_key=idempotency_key,
            requester=requester,
            attachments=attachments,
            send_at=send_at,
            approve_at_send_time=approve_at_send_time,
            in_reply_to=message_id,
            references=reply_references(parsed.references, parsed.in_reply_to, message_id),
            body_format=body_format,
            from_alias=from_alias,
            quote=quote_of(person(parsed.sender), parsed.date, parsed.text),
        )

    # --- mail held for a human (gated_all) ---------------------------------------------------

    async def held(self, mailbox: str | None = None) -> list[EmailSummary]:
        boxes = [parse_mailbox(mailbox)] if mailbox else [m.address for m in await self._mailboxes.all()]
        found: list[EmailSummary] = []
        for box in boxes:
            if not self._providers.for_mailbox(box).has_inbox:
                continue
            page = await self._providers.for_mailbox(box).list_emails(box, EmailQuery(held=True, limit=500))
            found.extend(page.emails)
        return sorted(found, key=lambda e: e.received_at)

    async def decide_held(
        self, email_id: str, change: EmailChange, actor: str, mailbox: str | None = None
    ) -> EmailSummary:
        """Release (the agent sees it from now on) or discard (it never does) one held email."""
        if mailbox is None:
            matches = {e.mailbox for e in await self.held() if e.email_id == email_id.strip()}
            if len(matches) != 1:
                where = "in no mailbox" if not matches else "in several mailboxes; name one with --mailbox"
                raise NotFound(f"held email {email_id} is {where}")
            mailbox = matches.pop()
        address = parse_mailbox(mailbox)
        try:
            return await self._providers.for_mailbox(address).change_email(address, email_id.strip(), change, actor)
        except EmailNotFound as exc:
            raise NotFound(f"{exc}; `mailgate inbound list` shows held mail") from exc

    async def configure_watcher(self, mailbox: str, intake: IntakeConfig | None) -> None:
        """Start the mailbox's watcher if needed and give it this intake and the poll interval."""
        address = parse_mailbox(mailbox)
        if not self._providers.for_mailbox(address).has_inbox:
            return  # send-only: no mail arrives to watch for
        config = WatcherConfig(intake=intake, poll_interval=timedelta(seconds=self._settings.inbound_poll_seconds))
        # A watcher started here begins at the present, fixed now: mail arriving from now on is new to it.
        now = (await self._providers.for_mailbox(address).changes(address, None)).cursor
        await signal_watcher(
            self._client,
            address,
            self._settings.task_queue,
            "configure",
            [config],
            cursor=now,
            poll_interval=config.poll_interval,
        )
