"""Sending through MultiMail: a new email or a reply, idempotent per send (see ``provider.py``),
and where a send MultiMail holds for its own human stands (``held_outcome``, ``cancel_held``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from workflows.models import DeliveryReceipt, DeliveryRequest, EmailAddress, HeldOutcome
from workflows.providers.base import PermanentDeliveryError, TemporaryDeliveryError
from workflows.providers.multimail.account import (
    MULTIMAIL_HOLDS,
    MultiMailAccount,
    checked_id,
    classify,
    parse_people,
    reply_parent,
    when,
)
from workflows.providers.multimail.client import (
    IDEMPOTENCY_TTL_HOURS,
    LIST_LIMIT_MAX,
    MARKDOWN_MAX_CHARS,
    SUBJECT_MAX_CHARS,
    TO_MAX,
    DuplicateReply,
    Email,
    MultiMailError,
    OutgoingAttachment,
    ReplyBody,
    SendBody,
)

log = logging.getLogger("mailgate.multimail")
GATED = ("gated_send", "gated_all")
SENT = {"unread", "read", "archived", "deleted"}  # an outbound email in a mailbox state went out
# A retry this late may find MultiMail's idempotency key gone: look for the email first.
LOOK_BEFORE_RESEND = timedelta(hours=IDEMPOTENCY_TTL_HOURS - 1)
# Documented statuses of an email that is neither sent nor refused yet: its send keeps waiting.
WAITING = {"pending_send_approval", "pending_scan", "scheduled", "spam_flagged", *MULTIMAIL_HOLDS}


def _send_key(request: DeliveryRequest) -> str:
    """Idempotency key and tag of one email: a send's id; for a notice (one notice id, one email
    per recipient) its Message-ID, fixed per recipient, so each recipient gets it once."""
    return request.message_id if request.system else request.send_id


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


class Sending(MultiMailAccount):
    """MultiMailProvider's sends and the sends MultiMail holds."""

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
        parent = reply_parent(draft.in_reply_to)
        if parent and await self._reply_keeps(draft.to, draft.subject, parent):
            # MultiMail addresses a reply itself (to the original sender) and threads it.
            try:
                answer = await self.client.reply(box, parent, ReplyBody(**common))
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
        sender = parse_people(parent.sender)
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
                if when(item.received_at) < since:
                    continue
                tags = await self.client.get_tags(box, checked_id(item.id))
                if tags.get("mailgate_send_id") == _send_key(request):
                    return item.id
                if not tags.get("mailgate_send_id"):
                    untagged.append(item)
            oldest = page.emails[-1] if page.emails else None
            if not page.cursor or oldest is None or when(oldest.received_at) < since:
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
