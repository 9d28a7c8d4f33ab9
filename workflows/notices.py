"""Notices to humans: what happened (a send waits, a monitored send went out, an upgrade is asked)
and how it reads as an email and as a webhook event.

A Notice crosses the Temporal boundary, so it is plain data: no links, tokens or codes. Those
are made from the server's secret key by the activity that sends the notice.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from typing import Any, Literal

from workflows.mail.visibility import draft_warnings, show_invisible
from workflows.models import Attachment, Decision, EmailAddress, EmailDraft, Frozen, OversightMode

NoticeKind = Literal["approval_requested", "monitored_sent", "upgrade_requested", "trash_requested"]

EVENT_TYPES: dict[NoticeKind, str] = {
    "approval_requested": "send.approval_requested",
    "monitored_sent": "send.monitored_sent",
    "upgrade_requested": "mailbox.upgrade_requested",
    "trash_requested": "trash.approval_requested",
}


class Notice(Frozen):
    notice_id: str
    kind: NoticeKind
    mailbox: str
    at: datetime
    send_id: str | None = None
    requester: str = ""
    draft: EmailDraft | None = None
    expires_at: datetime | None = None
    mode: OversightMode | None = None
    upgrade_request_id: str | None = None
    reason: str = ""
    # A front door's proof (workflows/trust/notice_proofs.py): without a valid one nothing is sent.
    proof: str | None = None
    # When the draft shows an approver's edits: that approval, and the submitted draft's
    # digests (proofs.draft_digests of its light_draft), which its proof covers.
    decision: Decision | None = None
    original: dict[str, str] | None = None
    # A bulk trash waiting for a human (workflows/trash_approval.py): its request id and how many emails.
    trash_request_id: str | None = None
    email_count: int = 0

    @property
    def decides(self) -> str | None:
        """The send or trash request this notice's one-click links decide, if it asks for a decision."""
        if self.kind == "approval_requested":
            return self.send_id
        return self.trash_request_id if self.kind == "trash_requested" else None


class NoticeReport(Frozen):
    """What NotifyWorkflow did, for the Temporal UI and tests."""

    notice_id: str
    webhook: str
    emailed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


def light_draft(draft: EmailDraft) -> EmailDraft:
    """The draft without attachment bytes: a notice names attachments, it does not carry them."""
    return draft.model_copy(
        update={
            "attachments": tuple(
                Attachment(filename=a.filename, content_type=a.content_type, content_b64="", size=a.size)
                for a in draft.attachments
            )
        }
    )


def send_url(base_url: str, send_id: str) -> str:
    return f"{base_url}/sends/{send_id}"


def trash_url(base_url: str, request_id: str) -> str:
    return f"{base_url}/trash/{request_id}"


def webhook_event(notice: Notice, base_url: str) -> dict[str, Any]:
    data: dict[str, Any] = {"mailbox": notice.mailbox, "notice_id": notice.notice_id}
    if notice.send_id:
        data |= {"send_id": notice.send_id, "requester": notice.requester, "url": send_url(base_url, notice.send_id)}
    if notice.draft is not None:
        draft = notice.draft
        data |= {
            "subject": draft.subject,
            "to": [a.address for a in draft.to],
            "cc": [a.address for a in draft.cc],
            "bcc": [a.address for a in draft.bcc],
            "body": draft.body,
            "attachments": [{"filename": a.filename, "size": a.size} for a in draft.attachments],
            # Why the body or a header reads differently from what it is (empty when it does not).
            "warnings": draft_warnings(draft),
        }
    if notice.expires_at:
        data["expires_at"] = notice.expires_at.isoformat()
    if notice.kind == "upgrade_requested":
        data |= {"mode": notice.mode, "reason": notice.reason, "request_id": notice.upgrade_request_id}
        data["url"] = f"{base_url}/upgrades"
    if notice.kind == "trash_requested" and notice.trash_request_id:
        data |= {
            "request_id": notice.trash_request_id,
            "requester": notice.requester,
            "count": notice.email_count,
            "url": trash_url(base_url, notice.trash_request_id),
        }
    return {"type": EVENT_TYPES[notice.kind], "timestamp": notice.at.isoformat(), "data": data}


def _draft_block(draft: EmailDraft) -> str:
    """The draft as text, with invisible characters shown as <U+XXXX> and a warning when any
    part of it reads differently from what it is: the approver decides on what they read here."""

    def people(items: tuple[EmailAddress, ...]) -> str:
        return ", ".join(show_invisible(str(a)) for a in items) or "(none)"

    warnings = draft_warnings(draft)
    lines = [f"LOOK CLOSELY: {w}" for w in warnings] + ([""] if warnings else [])
    lines += [f"To:      {people(draft.to)}"]
    if draft.cc:
        lines.append(f"Cc:      {people(draft.cc)}")
    lines.append(f"Bcc:     {people(draft.bcc)}")
    lines.append(f"Subject: {show_invisible(draft.subject)}")
    for attachment in draft.attachments:
        lines.append(f"Attached: {show_invisible(attachment.filename)} ({attachment.size} bytes)")
    quoted = textwrap.indent(show_invisible(draft.body), "| ", lambda _: True)
    return "\n".join(lines) + "\n\n" + quoted


def email_text(
    notice: Notice, base_url: str, approve_url: str = "", reject_url: str = "", code: str = ""
) -> tuple[str, str]:
    """Subject and plain-text body of the notice email to one human (links and code only if given)."""
    draft = notice.draft
    who = notice.requester or "An agent"
    if notice.kind == "approval_requested" and draft is not None and notice.send_id:
        expires = f" before {notice.expires_at:%Y-%m-%d %H:%M} UTC" if notice.expires_at else ""
        page = send_url(base_url, notice.send_id)
        if approve_url and reject_url:
            act = (
                f"Approve: {approve_url}\nReject:  {reject_url}\n\n"
                "Each link opens a page where you confirm; it works once and expires.\n"
                f"Edit before approving, or see the whole send: {page}\n"
            )
        else:
            act = f"Decide in the dashboard: {page}\n"
        body = (
            f"{who} wants to send this email from {notice.mailbox}, which needs a human's approval{expires}."
            f"\n\n{_draft_block(draft)}\n\n{act}"
        )
        return f"[mailgate] Approval needed: {draft.subject}", body
    if notice.kind == "trash_requested" and notice.trash_request_id:
        return _trash_text(notice, base_url, approve_url, reject_url)
    if notice.kind == "monitored_sent" and draft is not None and notice.send_id:
        body = (
            f"{who} sent this email from {notice.mailbox} (mode monitored: it went out at once; "
            f"please review it).\n\n{_draft_block(draft)}\n\n"
            f"Review and acknowledge: {base_url}/reviews\nThe send: {send_url(base_url, notice.send_id)}\n"
        )
        return f"[mailgate] Sent, please review: {draft.subject}", body
    where = f"The one-time code is {code}" if code else f"The one-time code is shown at {base_url}/upgrades"
    body = (
        f"{who} asks to loosen {notice.mailbox} to {notice.mode}.\n"
        f"Reason given: {notice.reason or '(none)'}\n\n"
        f"If you agree, give the agent the code. {where} (and by `mailgate upgrades list`). "
        "If not, do nothing: the request expires in 24 hours.\n"
    )
    return f"[mailgate] Upgrade requested: {notice.mailbox} to {notice.mode}", body


def _trash_text(notice: Notice, base_url: str, approve_url: str, reject_url: str) -> tuple[str, str]:
    assert notice.trash_request_id is not None
    who = notice.requester or "An agent"
    expires = f" before {notice.expires_at:%Y-%m-%d %H:%M} UTC" if notice.expires_at else ""
    page = trash_url(base_url, notice.trash_request_id)
    if approve_url and reject_url:
        act = (
            f"Approve: {approve_url}\nReject:  {reject_url}\n\n"
            "Each link opens a page that lists the emails and where you confirm; it works once and expires.\n"
            f"Or decide in the dashboard: {page}\n"
        )
    else:
        act = f"Decide in the dashboard: {page}\n"
    body = (
        f"{who} wants to move {notice.email_count} emails of {notice.mailbox} to the trash in one go, "
        f"which needs a human's approval{expires}. Nothing moves until someone approves "
        f"(trash request {notice.trash_request_id}).\n\n{act}"
    )
    return f"[mailgate] Approval needed: trash {notice.email_count} emails of {notice.mailbox}", body
