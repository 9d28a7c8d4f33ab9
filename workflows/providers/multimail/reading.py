"""Reading a MultiMail mailbox: listings and searches (the query syntax as MultiMail's filters),
one email as RFC 5322 bytes, attachments on demand, holds released or discarded, replies."""

from __future__ import annotations

import asyncio
from datetime import UTC
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

import httpx

from workflows.mail.parsing import parse_email_async
from workflows.mail.search_query import QuerySyntaxError, parse_query
from workflows.providers.base import EmailNotFound
from workflows.providers.multimail.account import checked_id, classify, parse_people
from workflows.providers.multimail.client import LIST_LIMIT_MAX, Email, MultiMailError
from workflows.providers.multimail.inbound import Inbound
from workflows.read_models import EmailChange, EmailPage, EmailQuery, EmailSummary, StoredEmail


def multimail_query(query: EmailQuery) -> EmailQuery:
    """The search syntax as MultiMail's listing filters: words (in the subject), from:, is:unread,
    in:inbox|sent and after:. Anything else is refused by name: MultiMail has no such filter."""
    parsed = parse_query(query.search or "")
    unsupported = [
        name
        for name, used in (
            ("to:", parsed.recipients),
            ("subject:", parsed.subject),
            ("has:attachment", parsed.has_attachment),
            ("is:read", parsed.unread is False),
            ("label:", parsed.labels),
            ("before:", parsed.before),
            ("thread:", parsed.thread),
            ("a second from:", len(parsed.senders) > 1),
            ("in:" + (parsed.folder or ""), parsed.folder not in (None, "inbox", "sent")),
        )
        if used
    ]
    if unsupported:
        raise QuerySyntaxError(
            f"MultiMail mailboxes cannot search by {', '.join(unsupported)}; they take words, from:, "
            "is:unread, in:inbox|sent and after:"
        )
    folder = parsed.folder if parsed.folder in ("inbox", "sent") else query.folder
    return query.model_copy(
        update={
            "search": None,
            "folder": folder,
            "text": " ".join(" ".join(t) for t in parsed.terms) or query.text,
            "sender": parsed.senders[0] if parsed.senders else query.sender,
            "unread_only": query.unread_only or parsed.unread is True,
            "since": max((d for d in (query.since, parsed.after) if d is not None), default=None),
        }
    )


class Reading(Inbound):
    """MultiMailProvider's reads and changes of stored mail."""

    async def search(self, mailbox: str, query: str, limit: int, cursor: str | None) -> EmailPage:
        return await self.list_emails(mailbox, EmailQuery(folder=None, search=query, limit=limit, cursor=cursor))

    async def list_emails(self, mailbox: str, query: EmailQuery) -> EmailPage:
        if query.search:
            query = multimail_query(query)
        box = self.config.mailbox_id
        try:
            if query.thread_id is not None:
                thread = await self.client.get_thread(box, checked_id(query.thread_id, "thread id"))
                items = [e.data() for e in thread.emails]
                if query.with_text:
                    items = [(await self.client.get_email(box, checked_id(str(e["id"])))).data() for e in items]
                for item in items:
                    item["thread_id"] = item.get("thread_id") or query.thread_id
                emails = await self._visible(items, held=query.held)
                emails.sort(key=lambda e: e.received_at, reverse=not query.oldest_first)
                return EmailPage(emails=tuple(emails[: query.limit]))
            items, cursor = [], query.cursor
            while True:  # the API gives at most 100 a page; a larger limit walks pages
                page = await self.client.list_emails(
                    box,
                    direction="inbound" if query.folder == "inbox" else "outbound" if query.folder == "sent" else None,
                    status="pending_inbound_approval" if query.held else "unread" if query.unread_only else None,
                    sender=query.sender,
                    subject_contains=query.text,
                    date_after=query.since.astimezone(UTC).isoformat() if query.since else None,
                    limit=min(query.limit - len(items), LIST_LIMIT_MAX),
                    cursor=cursor,
                )
                items += [e.data() for e in page.emails]
                cursor = page.cursor
                if not cursor or not page.emails or len(items) >= query.limit:
                    break
        except EmailNotFound:
            return EmailPage(emails=())
        except MultiMailError as exc:
            if exc.status_code == 404:
                return EmailPage(emails=())
            if exc.status_code == 400:
                raise ValueError(f"MultiMail refused the query: {exc}") from exc
            raise
        emails = await self._visible(items, held=query.held)
        if query.held and query.cursor is None:
            # Held by mailgate's own mode: kept here, listed from here (MultiMail shows them unheld).
            ours = await asyncio.to_thread(self.holds.held, query.limit)
            listed = {e.email_id for e in emails}
            emails += [self._summary(i, held_here=True) for i in ours if str(i.get("id")) not in listed]
        if query.message_id:
            emails = [e for e in emails if e.message_id == query.message_id]
        return EmailPage(emails=tuple(emails), next_cursor=cursor)

    async def _email(self, mailbox: str, email_id: str, *, include_held: bool) -> tuple[Email, EmailSummary]:
        box = self.config.mailbox_id
        email_id = checked_id(email_id)
        known = (await asyncio.to_thread(self.holds.states, [email_id])).get(email_id)
        if known == "discarded" or (known == "held" and not include_held):
            raise EmailNotFound(f"no email {email_id} in mailbox {mailbox}")
        try:
            email = await self.client.get_email(box, email_id)
        except MultiMailError as exc:
            if exc.status_code == 404:
                raise EmailNotFound(f"no email {email_id} in mailbox {mailbox}") from exc
            raise
        item = email.data()
        if not item.get("direction"):
            # The document lists direction only in summaries: mail not from this mailbox is inbound
            # (so mailgate's gated_all still decides on it), whatever the full email says.
            sender = parse_people(item.get("from"))
            mine = bool(sender) and sender[0].address.lower() == self.config.address.lower()
            item["direction"] = "outbound" if mine else "inbound"
        state = (await self._states([item])).get(email_id)
        summary = self._summary(item, held_here=state == "held")
        if state == "discarded" or (summary.held and not include_held) or await self._marked(item):
            raise EmailNotFound(f"no email {email_id} in mailbox {mailbox}")
        return email, summary

    async def fetch_email(self, mailbox: str, email_id: str, *, include_held: bool = False) -> StoredEmail:
        """The email with its attachments named but empty: ``fetch_attachment`` downloads one."""
        email, summary = await self._email(mailbox, email_id, include_held=include_held)
        files = [(a.name, a.content_type or "application/octet-stream", b"") for a in email.attachments if a.name]
        raw = self._rfc5322(email, summary, files)
        # Keyed as reading names them (it drops any directory part of a name).
        parsed = [p.filename for p in (await parse_email_async(raw)).attachments]
        sizes = {n: a.size for n, a in zip(parsed, (a for a in email.attachments if a.name), strict=False) if a.size}
        return StoredEmail(summary=summary, raw=raw, attachment_sizes=sizes)

    async def fetch_attachment(self, mailbox: str, email_id: str, index: int) -> bytes | None:
        email, _ = await self._email(mailbox, email_id, include_held=False)
        named = [a for a in email.attachments if a.name]  # in the order fetch_email put them
        if not 1 <= index <= len(named):
            raise EmailNotFound(f"email {email_id} has no attachment {index}")
        filename = named[index - 1].name  # MultiMail's own name: it may hold "/", which reading strips
        try:
            return await self.client.attachment(self.config.mailbox_id, email.id, filename)
        except MultiMailError as exc:
            if exc.status_code == 404:
                raise EmailNotFound(f"email {email_id} has no attachment {filename!r} at MultiMail") from exc
            raise
        except ValueError as exc:  # a sender's name no URL can carry, such as ".."
            raise EmailNotFound(f"email {email_id}: attachment {filename!r} cannot be fetched: {exc}") from exc

    @staticmethod
    def _rfc5322(email: Email, summary: EmailSummary, files: list[tuple[str, str, bytes]]) -> bytes:
        msg = EmailMessage(policy=policy.SMTP)
        for header, people in (
            ("From", (summary.sender,) if summary.sender else ()),
            ("To", summary.to),
            ("Cc", summary.cc),
        ):
            if people:
                msg[header] = ", ".join(str(p) for p in people if p is not None)
        msg["Subject"] = summary.subject
        msg["Date"] = format_datetime(summary.received_at)
        msg["Message-ID"] = summary.message_id
        msg.set_content(email.markdown or "")
        for name, content_type, content in files:
            maintype, _, subtype = content_type.partition("/")
            msg.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream", filename=name)
        return msg.as_bytes()

    async def change_email(self, mailbox: str, email_id: str, change: EmailChange, actor: str) -> EmailSummary:
        if change == "read":
            # MultiMail marks an email read when it is fetched, which read_email has just done.
            return (await self.fetch_email(mailbox, email_id)).summary
        before = await self._cursor()
        decided = await asyncio.to_thread(self.holds.decide, checked_id(email_id), change, actor)
        if decided is None:
            raise EmailNotFound(
                f"email {email_id} is not held by mailgate (mail held by MultiMail's own oversight "
                "is decided in MultiMail)"
            )
        if change == "release":
            await self.hooks.arrived([self.config.address], before)
        return self._summary(decided)

    async def _cursor(self) -> str:
        return (await self.changes(self.config.address, None)).cursor

    async def find_reply(self, mailbox: str, message_id: str) -> EmailSummary | None:
        """The first inbound email in the thread of our send (found by its mailgate_send_id tag)."""
        box = self.config.mailbox_id
        send_id = message_id.strip("<>").partition("@")[0]
        page = await self.client.list_emails(box, direction="outbound", limit=LIST_LIMIT_MAX)
        for item in page.emails:
            if not item.thread_id:
                continue
            tags = await self.client.get_tags(box, checked_id(item.id))
            if tags.get("mailgate_send_id") != send_id:
                continue
            mine = self._summary(item.data())
            thread = await self.list_emails(mailbox, EmailQuery(thread_id=mine.thread_id, oldest_first=True))
            return next((e for e in thread.emails if e.folder == "inbox" and e.received_at >= mine.received_at), None)
        return None

    async def send_id_of(self, email_id: str) -> str | None:
        """The mailgate send an email of this mailbox came from (its ``mailgate_send_id`` tag)."""
        try:
            tags = await self.client.get_tags(self.config.mailbox_id, checked_id(email_id))
        except MultiMailError as exc:
            if exc.status_code == 404:
                return None
            raise classify(exc, "tags") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise classify(exc, "tags") from exc
        return tags.get("mailgate_send_id")
