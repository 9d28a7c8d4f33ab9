"""The Slack message of one pending send, as Block Kit JSON, and what travels to build it.

Everything an agent wrote (subject, body, names, file names) is shown as ``plain_text``, which
Slack never formats: an agent cannot make its email look like mailgate's own labels or buttons.
Bcc is always shown. Pure functions, no I/O: the activities post what these return.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from workflows.models import EmailAddress, EmailDraft, Frozen
from workflows.notices import send_url, trash_url

APPROVE = "mailgate_approve"
REJECT = "mailgate_reject"
EDIT = "mailgate_edit"
REJECT_VIEW = "mailgate_reject_reason"
REASON_BLOCK = "reason"
REASON_ACTION = "reason"
BODY_CHARS = 1500  # a section holds 3000; a reviewer reads the rest on the dashboard
FIELD_CHARS = 1900
HEADER_CHARS = 150

SlackStatus = Literal["approved", "rejected", "expired", "cancelled"]


class SlackRequest(Frozen):
    """Input of SlackWorkflow: one approval round of one send, or one bulk trash request (then
    ``send_id`` is the trash request's id and ``trash_count`` how many emails). No tokens: those
    stay in the worker."""

    send_id: str
    mailbox: str
    channel: str
    requester: str
    draft: EmailDraft | None = None
    expires_at: datetime
    trash_count: int = 0


def page_url(request: SlackRequest, base_url: str) -> str:
    """The dashboard page of what this message asks about."""
    return (send_url if request.draft is not None else trash_url)(base_url, request.send_id)


def _title(request: SlackRequest) -> str:
    if request.draft is None:
        return f"trash {request.trash_count} emails of {request.mailbox}"
    return f"email from {request.mailbox}: {request.draft.subject}"


class SlackOutcome(Frozen):
    status: SlackStatus
    by: str
    at: datetime
    reason: str = ""


class SlackPosted(Frozen):
    channel: str
    ts: str


class SlackReport(Frozen):
    posted: SlackPosted | None = None
    outcome: SlackOutcome | None = None
    updated: bool = False
    error: str = ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Text safe inside mrkdwn: no links, mentions or dates smuggled in."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _addresses(addresses: tuple[EmailAddress, ...]) -> str:
    return ", ".join(str(a) for a in addresses) or "(none)"


def _row(label: str, value: str) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": f"*{label}*"},
            {"type": "plain_text", "text": _cut(value, FIELD_CHARS) or " ", "emoji": False},
        ],
    }


def _date(at: datetime) -> str:
    """A date Slack shows in the reader's own time zone, with UTC text as the fallback."""
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _summary(request: SlackRequest, base_url: str) -> list[dict[str, Any]]:
    draft = request.draft
    if draft is None:
        return [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _cut(f"Trash emails of {request.mailbox}", HEADER_CHARS)},
            },
            _row("Mailbox", request.mailbox),
            _row("Emails to move to the trash", str(request.trash_count)),
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"<{page_url(request, base_url)}|See every email on the dashboard>"}
                ],
            },
        ]
    url = send_url(base_url, request.send_id)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(f"Email from {request.mailbox}", HEADER_CHARS)},
        },
        _row("From", request.mailbox),
        _row("To", _addresses(draft.to)),
        _row("Cc", _addresses(draft.cc)),
        _row("Bcc", _addresses(draft.bcc)),
        _row("Subject", draft.subject or "(no subject)"),
        {
            "type": "section",
            "text": {"type": "plain_text", "text": _cut(draft.body, BODY_CHARS) or " ", "emoji": False},
        },
    ]
    if len(draft.body) > BODY_CHARS:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"Body truncated ({len(draft.body)} characters): <{url}|read it all>"}
                ],
            }
        )
    if draft.attachments:
        names = ", ".join(f"{a.filename} ({a.size} bytes)" for a in draft.attachments)
        blocks.append(_row("Attachments", names))
    return blocks


def pending_message(request: SlackRequest, base_url: str) -> dict[str, Any]:
    """chat.postMessage arguments (minus the channel) for a send or trash waiting for a decision."""
    url = page_url(request, base_url)
    blocks = _summary(request, base_url)
    blocks += [
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Requested by *{escape(request.requester)}* · expires {_date(request.expires_at)}",
                }
            ],
        },
        {
            "type": "actions",
            "block_id": "mailgate_decision",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE,
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "value": request.send_id,
                },
                {
                    "type": "button",
                    "action_id": REJECT,
                    "text": {"type": "plain_text", "text": "Reject"},
                    "style": "danger",
                    "value": request.send_id,
                },
                {
                    "type": "button",
                    "action_id": EDIT,
                    "text": {"type": "plain_text", "text": "Edit" if request.draft is not None else "Open"},
                    "url": url,
                    "value": request.send_id,
                },
            ],
        },
    ]
    text = f"Approval needed: {_title(request)}"
    return {"text": _cut(text, 300), "blocks": blocks, "unfurl_links": False, "unfurl_media": False}


VERBS: dict[SlackStatus, str] = {
    "approved": ":white_check_mark: Approved",
    "rejected": ":x: Rejected",
    "expired": ":hourglass: Expired",
    "cancelled": ":no_entry_sign: Cancelled",
}


def final_message(request: SlackRequest, outcome: SlackOutcome, base_url: str) -> dict[str, Any]:
    """chat.update arguments (minus channel and ts): the same summary, the outcome, no buttons."""
    line = f"{VERBS[outcome.status]} by *{escape(outcome.by)}* {_date(outcome.at)}"
    if outcome.status == "expired":
        line = f"{VERBS['expired']} {_date(outcome.at)}: no decision in time"
    if outcome.reason:
        line += f"\nReason: {escape(_cut(outcome.reason, 1000))}"
    url = page_url(request, base_url)
    blocks = _summary(request, base_url)
    blocks += [
        {"type": "section", "text": {"type": "mrkdwn", "text": line}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{url}|Open on the dashboard>"}]},
    ]
    text = f"{outcome.status.capitalize()}: {_title(request)}"
    return {"text": _cut(text, 300), "blocks": blocks}


def reason_view(send_id: str, subject: str) -> dict[str, Any]:
    """The modal that asks why, opened by the Reject button of a send's message (views.open)."""
    return _reason_modal(send_id, "Reject email", f"Subject: {subject}")


def trash_reason_view(request_id: str, mailbox: str, count: int) -> dict[str, Any]:
    """The same modal for a bulk trash request: what is rejected is the trash, not an email."""
    return _reason_modal(request_id, "Reject trash request", f"Trash {count} emails of {mailbox}")


def _reason_modal(some_id: str, title: str, what: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": REJECT_VIEW,
        "private_metadata": some_id,
        "title": {"type": "plain_text", "text": title},  # Slack allows 24 characters here
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "plain_text", "text": _cut(what, 2900)}},
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "max_length": 2000,
                },
            },
        ],
    }
