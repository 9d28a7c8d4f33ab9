"""Agent tools for outbound email: durable_send, approval_status, cancel_send, list_sends."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import BaseModel, Field

from server.app import Mailgate
from server.tools.client_approval import ask_to_open
from server.tools.common import Cursor, Format, PageSize, ResponseFormat, agent_errors, reads, result, writes
from server.tools.scope import current_agent, requester
from server.validation import AttachmentInput
from server.views import SendPage, SendResult, next_step
from workflows.models import BodyFormat, EmailDraft, OversightMode, SendState, SendStatus

Mailbox = Annotated[
    str | None,
    Field(
        description="The sending mailbox's address; omitted: the default mailbox.", examples=["agent@mailgate.local"]
    ),
]
SendId = Annotated[str, Field(description="The send_id durable_send returned.", examples=["send-3vq6x7k2m4n5p2r3s4t5"])]
Recipients = Annotated[
    list[str],
    Field(
        description="Addresses, one per item: 'bob@example.com' or 'Bob Smith <bob@example.com>'.",
        examples=[["bob@example.com"]],
        max_length=50,
    ),
]


CopyRecipients = Annotated[list[str] | None, Field(description="Same form as to.")]
Attachments = Annotated[
    list[AttachmentInput] | None,
    Field(description="Files to attach: at most 10, 1 MiB together (decoded).", max_length=10),
]
SendAt = Annotated[
    str | None,
    Field(
        description="Send later: an ISO 8601 time with a UTC offset, e.g. 2026-12-01T09:00:00+01:00 "
        "(future, at most a year ahead). Status is scheduled until then; cancel_send stops it.",
    ),
]
ApproveAtSendTime = Annotated[
    bool,
    Field(
        description="With send_at in a gated mailbox: ask the human at send time instead of now (default: "
        "approval first, then it waits for send_at)."
    ),
]


BodyFormatArg = Annotated[
    BodyFormat,
    Field(
        description="text (default); markdown (CommonMark) or html: sent with an HTML part (sanitized: no "
        "scripts, images or remote content; inline styles kept) and a plain-text part."
    ),
]
FromAlias = Annotated[
    str | None,
    Field(description="Send from one of the mailbox's send_as aliases (get_mailbox lists them); default its address."),
]


def send_line(sent: SendResult) -> str:
    again = " (already submitted earlier; not sent twice)" if sent.deduplicated else ""
    when = f" for {sent.scheduled_for.isoformat(timespec='minutes')}" if sent.scheduled_for else ""
    reason = f"{sent.reason}. " if sent.reason else ""
    return f"{sent.send_id}: {sent.status}{when}{again}. {reason}{sent.next_step}"


class DraftView(BaseModel):
    to: list[str]
    cc: list[str] = []
    bcc: list[str] = []
    subject: str
    body: str
    attachments: list[str] = []


class EventView(BaseModel):
    at: datetime
    kind: str
    actor: str
    detail: str = ""


class StatusView(BaseModel):
    """A send as an agent needs to see it; `detailed` adds the email itself and its history."""

    send_id: str
    status: SendStatus
    mailbox: str
    oversight_mode: OversightMode
    message_id: str
    requested_at: datetime
    to: list[str]
    subject: str
    decision: Literal["approved", "rejected"] | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    edited: list[str] = Field(default=[], description="Fields a human changed before approving.")
    expires_at: datetime | None = None
    scheduled_for: datetime | None = None
    delivered_at: datetime | None = None
    reason: str = ""
    last_error: str = ""
    next_step: str
    email: DraftView | None = Field(default=None, description="detailed: what goes (or went) out.")
    original: DraftView | None = Field(default=None, description="detailed: what you asked for, if edited.")
    events: list[EventView] | None = Field(default=None, description="detailed: the send's history.")


def _draft(draft: EmailDraft) -> DraftView:
    return DraftView(
        to=[str(a) for a in draft.to],
        cc=[str(a) for a in draft.cc],
        bcc=[str(a) for a in draft.bcc],
        subject=draft.subject,
        body=draft.body,
        attachments=[a.filename for a in draft.attachments],
    )


def status_view(state: SendState, response_format: Format = "concise") -> StatusView:
    draft = state.approved or state.original
    decision = state.decision
    view = StatusView(
        send_id=state.send_id,
        status=state.status,
        mailbox=state.mailbox,
        oversight_mode=state.oversight_mode,
        message_id=state.message_id,
        requested_at=state.requested_at,
        to=[a.address for a in draft.to],
        subject=draft.subject,
        decision=None if decision is None else "approved" if decision.decision == "approve" else "rejected",
        decided_by=decision.approver if decision else None,
        decided_at=decision.decided_at if decision else None,
        decision_reason=decision.reason if decision else None,
        edited=sorted(decision.edits.changes()) if decision and decision.edits else [],
        expires_at=state.expires_at,
        scheduled_for=state.scheduled_for,
        delivered_at=state.delivered_at,
        reason=state.reason,
        last_error=state.last_error,
        next_step=next_step(state.status, state.send_id),
    )
    if response_format == "detailed":
        view.email = _draft(draft)
        view.original = _draft(state.original) if state.approved else None
        view.events = [EventView(at=e.at, kind=e.kind, actor=e.actor, detail=e.detail) for e in state.events]
    return view


def _status_line(view: StatusView) -> str:
    parts = [f"{view.send_id}: {view.status} (mailbox {view.mailbox}, {view.oversight_mode})"]
    if view.decision:
        parts.append(
            f"{view.decision} by {view.decided_by}" + (f": {view.decision_reason}" if view.decision_reason else "")
        )
    if view.edited:
        parts.append(f"a human edited {', '.join(view.edited)} before approving; the edited version is what goes out")
    if view.expires_at:
        parts.append(f"approval window ends {view.expires_at.isoformat(timespec='minutes')}")
    if view.reason and view.status not in ("sent", "pending_approval"):
        parts.append(view.reason)
    if view.last_error:
        parts.append(f"last delivery error: {view.last_error}")
    return "; ".join(parts) + ". " + view.next_step


def _status(state: SendState, response_format: Format = "concise") -> CallToolResult:
    view = status_view(state, response_format)
    return result(view, _status_line(view))


def register(mcp: MCPServer, app: Mailgate) -> None:
    @mcp.tool(annotations=writes("Send an email", destructive=False, idempotent=True, open_world=True))
    @agent_errors
    async def durable_send(
        to: Recipients,
        subject: Annotated[str, Field(description="Plain text, one line.", max_length=500)],
        body: Annotated[str, Field(description="The body, in body_format (plain text by default).")],
        ctx: Context,
        mailbox: Mailbox = None,
        cc: CopyRecipients = None,
        bcc: CopyRecipients = None,
        idempotency_key: Annotated[
            str | None,
            Field(
                description="Your key for this email. Retrying with the same key never sends twice; "
                "without one, identical content counts as the same email.",
                max_length=200,
            ),
        ] = None,
        approval_timeout_hours: Annotated[
            float | None,
            Field(description="How long a human has to decide (default: the mailbox's window, 72 h).", gt=0),
        ] = None,
        attachments: Attachments = None,
        send_at: SendAt = None,
        approve_at_send_time: ApproveAtSendTime = False,
        body_format: BodyFormatArg = "text",
        from_alias: FromAlias = None,
    ) -> Annotated[CallToolResult, SendResult] | InputRequiredResult:
        """Send an email from a mailbox, under that mailbox's oversight mode.

        In gated_send and gated_all mailboxes the email waits (hours or days) for a human to
        approve, edit or reject it; you get status pending_approval at once. In monitored and
        autonomous mailboxes it goes out at once. read_only mailboxes refuse. Safe to retry:
        the same email is sent at most once. With send_at it goes out later (status scheduled).
        """
        mailbox = app.default_mailbox(mailbox)
        sent = await app.sends.submit(
            mailbox=mailbox,
            to=to,
            subject=subject,
            body=body,
            cc=cc,
            bcc=bcc,
            idempotency_key=idempotency_key,
            approval_timeout_hours=approval_timeout_hours,
            attachments=attachments,
            send_at=send_at,
            approve_at_send_time=approve_at_send_time,
            body_format=body_format,
            from_alias=from_alias,
            requester=requester(),
        )
        return await ask_to_open(ctx, app, sent) or result(sent, send_line(sent))

    @mcp.tool(annotations=reads("Status of a send"))
    @agent_errors
    async def approval_status(
        send_id: SendId, response_format: ResponseFormat = "concise"
    ) -> Annotated[CallToolResult, StatusView]:
        """Where a send stands: pending_approval, scheduled, sending, sent, rejected, expired,
        cancelled, blocked or failed; who decided, when, with what reason and which edits.
        detailed adds the email as it goes out, your original if a human edited it, and the history."""
        return _status(await app.sends.status(send_id), response_format)

    @mcp.tool(annotations=writes("Cancel a send", destructive=True, idempotent=True))
    @agent_errors
    async def cancel_send(send_id: SendId) -> Annotated[CallToolResult, StatusView]:
        """Stop a send that has not been delivered yet (pending_approval or scheduled)."""
        return _status(await app.sends.cancel(send_id, actor=requester()))

    @mcp.tool(annotations=reads("List sends"))
    @agent_errors
    async def list_sends(
        mailbox: Annotated[str | None, Field(description="Only this mailbox's sends.")] = None,
        status: Annotated[SendStatus | None, Field(description="Only sends with this status.")] = None,
        limit: PageSize = 20,
        cursor: Cursor = None,
        response_format: ResponseFormat = "concise",
    ) -> Annotated[CallToolResult, SendPage]:
        """List sends, newest first, optionally by mailbox and status; paginated with cursor.
        detailed adds mailbox, recipients and request time."""
        page = await app.sends.search(mailbox=mailbox, status=status, limit=limit, cursor=cursor)
        # A scoped agent sees only its mailboxes' sends (a page may then hold fewer than limit).
        page.sends = [s for s in page.sends if current_agent().can_use(s.mailbox)]
        detailed = response_format == "detailed"
        lines = [
            f"{s.send_id} {s.status}" + (f" to {', '.join(s.to)}" if detailed else "") + f": {s.subject}"
            for s in page.sends
        ]
        more = f"\nMore: pass cursor={page.next_cursor}" if page.next_cursor else ""
        trim = None if detailed else {"sends": {"__all__": {"mailbox", "to", "requested_at"}}}
        return result(page, ("\n".join(lines) or "No sends.") + more, exclude=trim)
