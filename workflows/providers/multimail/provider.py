"""A mailbox at MultiMail (multimail.dev), through mailgate's own client (``client.py``).

Sending: a new email through the send endpoint, a reply to a MultiMail email through the reply
endpoint (so MultiMail sets the threading headers), both with ``idempotency_key`` = the send
id, which is fixed per send: a retried activity gets MultiMail's "already_sent" answer and the
same email id. MultiMail forgets keys after 24 hours, so a retry that late first looks for the
email by its ``mailgate_send_id`` tag and never sends blind. The tag also lets a webhook naming
only MultiMail's email id be traced to the send. The reply endpoint takes no ``to`` or
``subject``: a reply whose recipients or subject differ from MultiMail's own (a human edited
them) goes out through the send endpoint instead, edits kept, rather than losing them. If the
MultiMail mailbox is gated, the receipt says ``held``: the send then waits for MultiMail's human
(webhook, or polling as a fallback).

Reading: MultiMail's JSON emails are turned into RFC 5322 bytes (headers, text, attachments)
so the inbox service treats them like any other mail. MultiMail ids are opaque; the Message-ID
of a MultiMail email is made from its id (the API does not expose the real one), which lets a
reply find the email it answers. Attachments are listed by name and size when an email is read
and downloaded only when one is asked for (``fetch_attachment``).

New inbound mail is walked page by page, oldest first, so none is skipped however much arrived
between two scans. Mail MultiMail itself holds for its human (``pending_inbound_approval``) is
remembered (``HoldStore.waiting``) and reported when that human approves it.

Holding: MultiMail holds inbound mail only by its own mode. mailgate's ``gated_all`` is enforced
here too: each inbound email is checked against mailgate's mode when mailgate first sees it, and
the answer kept in a local file (``holds.py``). And no read returns an email that
carries mailgate's notice mark (``workflows/trust/marks.py``), whichever direction it went.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import httpx

from workflows.mail.addresses import AddressError, parse_address
from workflows.mail.parsing import parse_email_async
from workflows.mail.search_query import QuerySyntaxError, parse_query
from workflows.models import DeliveryReceipt, DeliveryRequest, EmailAddress, Frozen, HeldOutcome
from workflows.providers.base import (
    EmailNotFound,
    EmailProvider,
    InboundHooks,
    NoHooks,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from workflows.providers.multimail.client import (
    IDEMPOTENCY_TTL_HOURS,
    LIST_LIMIT_MAX,
    MARKDOWN_MAX_CHARS,
    SUBJECT_MAX_CHARS,
    TO_MAX,
    DuplicateReply,
    Email,
    MultiMailClient,
    MultiMailError,
    OutgoingAttachment,
    RateLimitError,
    ReplyBody,
    SendBody,
)
from workflows.providers.multimail.holds import HoldStore, State
from workflows.read_models import Changes, EmailChange, EmailPage, EmailQuery, EmailSummary, StoredEmail
from workflows.trust.marks import NoticeMarks

log = logging.getLogger("mailgate.multimail")
GATED = ("gated_send", "gated_all")
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_MM_MESSAGE_ID = re.compile(r"<mm\.([A-Za-z0-9_.:-]{1,128})@multimail\.mailgate\.invalid>")
SENT = {"unread", "read", "archived", "deleted"}  # an outbound email in a mailbox state went out
MULTIMAIL_HOLDS = ("pending_inbound_approval",)  # inbound mail MultiMail holds for its own human
# Documented statuses of an email that is neither sent nor refused yet: its send keeps waiting.
WAITING = {"pending_send_approval", "pending_scan", "scheduled", "spam_flagged", *MULTIMAIL_HOLDS}
# A retry this late may find MultiMail's idempotency key gone: look for the email first.
LOOK_BEFORE_RESEND = timedelta(hours=IDEMPOTENCY_TTL_HOURS - 1)
NOTICE_SUBJECT = "[mailgate]"  # notices start so; only those are read in full to look for the mark


class MultiMailConfig(Frozen):
    address: str
    mailbox_id: str
    base_url: str = "https://api.multimail.dev"
    decision_poll: timedelta = timedelta(minutes=5)
    timeout: float = 30.0


def _send_key(request: DeliveryRequest) -> str:
    """Idempotency key and tag of one email: a send's id; for a notice (one notice id, one email
    per recipient) its Message-ID, fixed per recipient, so each recipient gets it once."""
    return request.message_id if request.system else request.send_id


def checked_id(value: str, what: str = "email id") -> str:
    """MultiMail ids are plain id characters; anything else is no email of theirs (paths are encoded anyway)."""
    value = value.strip()
    if not _ID.fullmatch(value):
        raise EmailNotFound(f"{value!r} is not a MultiMail {what}")
    return value


def message_id_of(email_id: str) -> str:
    return f"<mm.{email_id}@multimail.mailgate.invalid>"


def classify(exc: Exception, what: str) -> Exception:
    """MultiMail's answers as delivery errors: retry what may pass later, fail what will not."""
    if isinstance(exc, RateLimitError):
        return TemporaryDeliveryError(f"{what}: MultiMail rate limit ({exc}); retry after {exc.retry_after or '?'} s")
    if isinstance(exc, MultiMailError):
        status = exc.status_code or 0
        words = f"MultiMail answered {status}: {exc}"
        if status >= 500 or status in (408, 409, 425):
            return TemporaryDeliveryError(f"{what}: {words}")
        return PermanentDeliveryError(f"{what}: {words}")
    if isinstance(exc, httpx.HTTPError | ValueError):
        return TemporaryDeliveryError(f"{what}: cannot reach MultiMail: {exc or type(exc).__name__}")
    return exc


def draft_problem(subject: str, body: str, to_count: int) -> str | None:
    """Why MultiMail would refuse this draft (its documented limits), or None: said at submit."""
    if len(body) > MARKDOWN_MAX_CHARS:
        return f"body is {len(body)} characters; MultiMail accepts at most {MARKDOWN_MAX_CHARS}"
    if len(subject) > SUBJECT_MAX_CHARS:
        return f"subject is {len(subject)} characters; MultiMail accepts at most {SUBJECT_MAX_CHARS}"
    if to_count > TO_MAX:
        return f"{to_count} recipients in to; MultiMail accepts at most {TO_MAX}"
    return None


def _reply_subject(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _people(values: Any) -> tuple[EmailAddress, ...]:
    found = []
    for value in values if isinstance(values, list) else [values] if isinstance(values, str) else []:
        try:
            found.append(parse_address(str(value)))
        except AddressError:
            continue
    return tuple(found)


def _when(value: Any) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class MultiMailProvider(EmailProvider):
    name = "multimail"

    def __init__(
        self,
        config: MultiMailConfig,
        api_key: str,
        client: MultiMailClient | None = None,
        *,
        hooks: InboundHooks | None = None,
        holds: HoldStore | None = None,
        marks: NoticeMarks | None = None,
    ) -> None:
        self.config = config
        self.client = client or MultiMailClient(api_key, base_url=config.base_url, timeout=config.timeout)
        self.hooks: InboundHooks = hooks or NoHooks()
        self.holds = holds or HoldStore()
        self.marks = marks
        self._pending_list = True

    def __repr__(self) -> str:  # never the key
        return f"MultiMailProvider({self.config.address}, {self.config.mailbox_id}, {self.config.base_url})"

    async def _call(self, what: str, call: Any) -> Any:
        try:
            return await call
        except (MultiMailError, httpx.HTTPError, ValueError) as exc:
            raise classify(exc, what) from exc

    async def _mode(self) -> str:
        boxes = await self._call("list mailboxes", self.client.list_mailboxes())
        for box in boxes:
            if box.id == self.config.mailbox_id:
                return str(box.oversight_mode or "gated_send")
        raise PermanentDeliveryError(f"MultiMail has no mailbox {self.config.mailbox_id} for this API key")

    # --- sending -------------------------------------------------------------------------------

    async def send(self, request: DeliveryRequest) -> DeliveryReceipt:
        draft = request.draft
        box = self.config.mailbox_id
        problem = draft_problem(draft.subject, draft.body, len(draft.to))
        if problem:
            raise PermanentDeliveryError(f"MultiMail would refuse this email: {problem}")
        email_id = None
        if datetime.now(UTC) - request.date >= LOOK_BEFORE_RESEND:
            # MultiMail may have forgotten the idempotency key: an earlier attempt may have sent it.
            email_id = await self._call("look for the send", self._sent_as(request))
        if email_id is None:
            email_id = await self._submit(request)
        # For webhooks that name only MultiMail's email id (idempotent: a retry sets the same tag).
        await self._call("tag", self.client.set_tags(box, email_id, {"mailgate_send_id": _send_key(request)}))
        held = await self._mode() in GATED
        return DeliveryReceipt(
            message_id=request.message_id,
            provider_id=email_id,
            recipients=tuple(a.address for a in draft.recipients()),
            held=held,
            recheck_after=self.config.decision_poll if held else None,
        )

    async def _submit(self, request: DeliveryRequest) -> str:
        draft = request.draft
        box = self.config.mailbox_id
        attachments = [
            OutgoingAttachment(name=a.filename, content_base64=a.content_b64, content_type=a.content_type)
            for a in draft.attachments
        ] or None
        common: dict[str, Any] = {
            "markdown": draft.body,
            "cc": [a.address for a in draft.cc] or None,
            "bcc": [a.address for a in draft.bcc] or None,
            "attachments": attachments,
            "idempotency_key": _send_key(request),
        }
        parent = _MM_MESSAGE_ID.fullmatch(draft.in_reply_to or "")
        if parent and await self._reply_keeps(draft.to, draft.subject, parent.group(1)):
            # MultiMail addresses a reply itself (to the original sender) and threads it.
            try:
                answer = await self.client.reply(box, parent.group(1), ReplyBody(**common))
            except DuplicateReply as exc:
                raise TemporaryDeliveryError(
                    f"reply: MultiMail refuses the same reply to the same email within 60 seconds ({exc}); "
                    "retrying after that window"
                ) from exc
            except (MultiMailError, httpx.HTTPError, ValueError) as exc:
                raise classify(exc, "reply") from exc
        else:
            body = SendBody(to=[a.address for a in draft.to], subject=draft.subject, **common)
            answer = await self._call("send", self.client.send(box, body))
        return answer.id

    async def _reply_keeps(self, to: Iterable[EmailAddress], subject: str, parent_id: str) -> bool:
        """Would MultiMail's reply endpoint send exactly this (its recipient and subject are its own)?"""
        try:
            parent = await self.client.get_email(self.config.mailbox_id, checked_id(parent_id))
        except MultiMailError as exc:
            if exc.status_code == 404:
                return False
            raise classify(exc, "read the email replied to") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise classify(exc, "read the email replied to") from exc
        sender = _people(parent.sender)
        wanted = {a.address.lower() for a in to}
        same_to = bool(sender) and wanted == {sender[0].address.lower()}
        ours = _reply_subject(parent.subject or "")
        if not same_to or " ".join(subject.split()) != " ".join(ours.split()):
            log.info("reply to %s sent as a new email: its recipients or subject were changed", parent_id)
            return False
        return True

    async def _sent_as(self, request: DeliveryRequest) -> str | None:
        """MultiMail's id of the email an earlier attempt of this send made, found by its tag."""
        box = self.config.mailbox_id
        since = request.date - timedelta(hours=1)
        cursor = None
        untagged = []
        while True:
            page = await self.client.list_emails(box, direction="outbound", cursor=cursor, limit=LIST_LIMIT_MAX)
            for item in page.emails:
                if _when(item.received_at) < since:
                    continue
                tags = await self.client.get_tags(box, checked_id(item.id))
                if tags.get("mailgate_send_id") == _send_key(request):
                    return item.id
                if not tags.get("mailgate_send_id"):
                    untagged.append(item)
            oldest = page.emails[-1] if page.emails else None
            if not page.cursor or oldest is None or _when(oldest.received_at) < since:
                break
            cursor = page.cursor
        # An attempt that ended between MultiMail's answer and the tag: the same email, untagged.
        wanted = sorted(a.address.lower() for a in request.draft.to)
        for item in untagged:
            if item.subject == request.draft.subject and sorted(t.lower() for t in item.to) == wanted:
                return item.id
        return None

    async def held_outcome(self, mailbox: str, provider_id: str) -> HeldOutcome:
        email_id = checked_id(provider_id)
        # The pending list first (one call answers for every held email), then the email itself
        # for the verdict. The list needs the "oversight" scope, which MultiMail never grants to a
        # key that may send: with such a key (403), the email alone answers.
        if self._pending_list:
            try:
                pending = await self.client.pending()
            except MultiMailError as exc:
                if exc.status_code != 403:
                    raise classify(exc, "pending list") from exc
                self._pending_list = False
            except (httpx.HTTPError, ValueError) as exc:
                raise classify(exc, "pending list") from exc
            else:
                if any(item.id == email_id for item in pending):
                    return HeldOutcome(status="pending")
        email = await self._call("read", self.client.get_email(self.config.mailbox_id, email_id))
        return outcome_of(email)

    async def cancel_held(self, mailbox: str, provider_id: str) -> HeldOutcome:
        email_id = checked_id(provider_id)
        try:
            await self.client.cancel(self.config.mailbox_id, email_id)
        except MultiMailError as exc:
            if exc.status_code != 409:  # 409: decided already; the email says how
                raise classify(exc, "cancel") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise classify(exc, "cancel") from exc
        email = await self._call("read", self.client.get_email(self.config.mailbox_id, email_id))
        return outcome_of(email)

    # --- reading -------------------------------------------------------------------------------

    def _summary(self, item: dict[str, Any], *, held_here: bool = False) -> EmailSummary:
        email_id = str(item.get("id"))
        direction = item.get("direction")
        status = str(item.get("status") or "")
        sender = _people(item.get("from"))
        return EmailSummary(
            email_id=email_id,
            mailbox=self.config.address,
            folder="sent" if direction == "outbound" else "inbox",
            message_id=message_id_of(email_id),
            thread_id=str(item.get("thread_id") or email_id),
            sender=sender[0] if sender else None,
            to=_people(item.get("to")),
            cc=_people(item.get("cc")),
            subject=str(item.get("subject") or ""),
            received_at=_when(item.get("received_at")),
            snippet=" ".join(str(item.get("markdown") or "").split())[:200],
            unread=status == "unread",
            has_attachments=bool(item.get("has_attachments")),
            held=held_here or status in MULTIMAIL_HOLDS,
            text=str(item["markdown"]) if item.get("markdown") is not None else None,
        )

    async def _states(self, items: list[dict[str, Any]]) -> dict[str, State]:
        """mailgate's hold state of each inbound item, deciding it (by mailgate's mode) on first sight."""
        inbound = [i for i in items if i.get("direction") == "inbound" and i.get("id")]
        states = await asyncio.to_thread(self.holds.states, [str(i["id"]) for i in inbound])
        new = [i for i in inbound if str(i["id"]) not in states]
        if new:
            # Raises when mailgate cannot tell: better no answer than held mail shown.
            state: State = "held" if await self.hooks.holds(self.config.address) else "visible"
            await asyncio.to_thread(self.holds.record, new, state)
            states = await asyncio.to_thread(self.holds.states, [str(i["id"]) for i in inbound])
        return states

    async def _marked(self, item: dict[str, Any]) -> bool:
        """Is this one of mailgate's notices (its text carries the mark)? Never shown to an agent."""
        if self.marks is None:
            return False
        text = item.get("markdown")
        if text is None:
            if not str(item.get("subject") or "").startswith(NOTICE_SUBJECT):
                return False
            full = await self.client.get_email(self.config.mailbox_id, checked_id(str(item.get("id"))))
            text = full.markdown
        return self.marks.in_text(str(text or ""))

    async def _visible(self, items: list[dict[str, Any]], *, held: bool) -> list[EmailSummary]:
        """The items an agent (``held`` False) or a human deciding held mail (True) may see."""
        states = await self._states(items)
        shown = []
        for item in items:
            state = states.get(str(item.get("id")))
            if state == "discarded" or await self._marked(item):
                continue
            summary = self._summary(item, held_here=state == "held")
            if summary.held == held:
                shown.append(summary)
        return shown

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
            sender = _people(item.get("from"))
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

    async def changes(self, mailbox: str, cursor: str | None, limit: int = 100) -> Changes:
        """Inbound mail after ``cursor`` ("<last MultiMail id>|<last release>"), oldest first, then
        mail MultiMail's human approved and mail mailgate's human released since."""
        box = self.config.mailbox_id
        if cursor is None:
            latest = await self.client.list_emails(box, direction="inbound", limit=1)
            last = latest.emails[0].id if latest.emails else ""
            return Changes(emails=(), cursor=f"{last}|{await asyncio.to_thread(self.holds.last_release)}")
        since, _, released = cursor.partition("|")
        release_seq = int(released) if released.isdigit() else await asyncio.to_thread(self.holds.last_release)
        # MultiMail answers newest first, a page at a time: walk every page back to the cursor,
        # then take the oldest, so nothing is skipped however much arrived between two scans.
        new: dict[str, dict[str, Any]] = {}
        page_cursor = None
        while True:
            page = await self.client.list_emails(
                box, direction="inbound", since_id=since or None, cursor=page_cursor, limit=LIST_LIMIT_MAX
            )
            for item in page.emails:
                if not since or item.id > since:
                    new[item.id] = item.data()
            page_cursor = page.cursor
            if not page_cursor or not page.emails:
                break
        items = [new[key] for key in sorted(new)][:limit]
        more = len(new) > limit
        since = items[-1]["id"] if items else since
        # Held by MultiMail for its human: not lost when the cursor passes it, but remembered.
        waiting = [i for i in items if i.get("status") in MULTIMAIL_HOLDS]
        if waiting:
            await asyncio.to_thread(self.holds.wait, waiting)
        visible = await self._visible([i for i in items if i.get("status") not in MULTIMAIL_HOLDS], held=False)
        visible += await self._approved_at_multimail()
        freed = await asyncio.to_thread(self.holds.released_after, release_seq, limit)
        if freed:
            release_seq = freed[-1][0]
            visible += [self._summary(item) for _, item in freed]
        more = more or len(freed) >= limit
        return Changes(emails=tuple(visible), cursor=f"{since}|{release_seq}", more=more)

    async def _approved_at_multimail(self) -> list[EmailSummary]:
        """Inbound mail MultiMail held for its human and has let through since the last look."""
        waiting = await asyncio.to_thread(self.holds.waiting)
        if not waiting:
            return []
        # One listing says which are still held; only those that left it are read one by one.
        still: set[str] = set()
        cursor = None
        while True:
            page = await self.client.list_emails(
                self.config.mailbox_id,
                direction="inbound",
                status="pending_inbound_approval",
                cursor=cursor,
                limit=LIST_LIMIT_MAX,
            )
            still |= {e.id for e in page.emails}
            cursor = page.cursor
            if not cursor or not page.emails:
                break
        shown: list[EmailSummary] = []
        for email_id in waiting:
            if email_id in still:
                continue
            try:
                email = await self.client.get_email(self.config.mailbox_id, email_id)
            except MultiMailError as exc:
                if exc.status_code != 404:
                    raise
                await asyncio.to_thread(self.holds.done_waiting, email_id)
                continue
            if email.status in MULTIMAIL_HOLDS:
                continue
            await asyncio.to_thread(self.holds.done_waiting, email_id)
            if email.status in ("unread", "read", "archived"):
                shown += await self._visible([email.data()], held=False)
        return shown

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

    async def create_mailbox(self, address: str) -> None:
        """The mailbox must exist at MultiMail already (creating one there needs an operator's code)."""
        try:
            await self._mode()
        except PermanentDeliveryError as exc:
            raise EmailNotFound(str(exc)) from exc

    async def aclose(self) -> None:
        await self.client.close()
        await asyncio.to_thread(self.holds.close)


def outcome_of(email: Email) -> HeldOutcome:
    """Where a held send stands, from the documented fields: approval is the human's yes, and
    MultiMail sends an approved email at once, so an approved email is reported sent."""
    status = email.status or ""
    who = email.approved_by or ""
    by = f" by {who}" if who else ""
    if status == "send_failed":
        return HeldOutcome(
            status="failed",
            detail=f"{'approved' + by + ', then ' if email.approved_at else ''}MultiMail could not send it",
            decided_by=who,
        )
    if status == "rejected":
        return HeldOutcome(status="rejected", detail="rejected at MultiMail", decided_by=who)
    if status == "cancelled":
        return HeldOutcome(status="cancelled", detail="cancelled at MultiMail")
    if email.approved_at or email.approved_by or email.delivered_at or email.bounced_at or status in SENT:
        detail = f"approved at MultiMail{by}" if email.approved_at or who else "sent by MultiMail"
        if email.bounced_at:
            detail += "; it bounced afterwards"
        return HeldOutcome(status="sent", detail=detail, decided_by=who)
    if status == "spam_quarantined":
        return HeldOutcome(status="failed", detail="MultiMail's content scan quarantined it; it was not sent")
    if status in WAITING:
        return HeldOutcome(status="pending", detail=status)
    # A status MultiMail added after the document mailgate follows. Not a verdict: failing the send
    # could report "failed" for an email MultiMail then sends (and invite a resend), so it keeps
    # waiting for MultiMail's human, with the provider's words where people look, until the window
    # ends and the usual withdrawal settles it.
    note = (
        f"MultiMail reports status {status[:64] or '(none)'!r} for email {email.id[:128]!r}, which mailgate "
        "does not know; "
        "the send keeps waiting for MultiMail's human until its approval window ends"
    )
    log.warning("%s", note)
    return HeldOutcome(status="pending", detail=status, note=note)


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
