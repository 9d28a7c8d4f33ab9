"""Agent tools for outbound email: durable_send, approval_status, cancel_send, list_sends."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from server.app import Mailgate
from server.outbound import AttachmentInput
from server.sends import SendPage, SendResult, next_step
from server.tools.common import agent_errors, reads, result, writes
from workflows.models import SendState, SendStatus

Mailbox = Annotated[str, Field(description="The sending mailbox's address.", examples=["agent@mailgate.local"])]
SendId = Annotated[str, Field(description="The send_id durable_send returned.", examples=["send-3vq6x7k2m4n5p2r3s4t5"])]
Recipients = Annotated[
    list[str],
    Field(
        description="Addresses, one per item: 'bob@example.com' or 'Bob Smith <bob@example.com>'.",
        examples=[["bob@example.com"]],
        max_length=50,
    ),
]


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


def send_line(sent: SendResult) -> str:
    again = " (already submitted earlier; not sent twice)" if sent.deduplicated else ""
    when = f" for {sent.scheduled_for.isoformat(timespec='minutes')}" if sent.scheduled_for else ""
    reason = f"{sent.reason}. " if sent.reason else ""
    return f"{sent.send_id}: {sent.status}{when}{again}. {reason}{sent.next_step}"


class StatusResult(SendState):
    next_step: str


def _status_line(state: SendState) -> str:
    parts = [f"{state.send_id}: {state.status} (mailbox {state.mailbox}, {state.oversight_mode})"]
    if state.decision:
        verb = "approved" if state.decision.decision == "approve" else "rejected"
        parts.append(
            f"{verb} by {state.decision.approver}" + (f": {state.decision.reason}" if state.decision.reason else "")
        )
    if state.approved:
        parts.append("a human edited the email before approving; the edited version is what goes out")
    if state.expires_at:
        parts.append(f"approval window ends {state.expires_at.isoformat(timespec='minutes')}")
    if state.reason and state.status not in ("sent", "pending_approval"):
        parts.append(state.reason)
    if state.last_error:
        parts.append(f"last delivery error: {state.last_error}")
    return "; ".join(parts) + ". " + next_step(state.status, state.send_id)


def _status(state: SendState) -> CallToolResult:
    view = StatusResult(**state.model_dump(), next_step=next_step(state.status, state.send_id))
    return result(view, _status_line(state))


def register(mcp: MCPServer, app: Mailgate) -> None:
    @mcp.tool(annotations=writes("Send an email", destructive=False, idempotent=True, open_world=True))
    @agent_errors
    async def durable_send(
        mailbox: Mailbox,
        to: Recipients,
        subject: Annotated[str, Field(description="Plain text, one line.", max_length=500)],
        body: Annotated[str, Field(description="Plain-text body.")],
        cc: Recipients | None = None,
        bcc: Recipients | None = None,
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
    ) -> Annotated[CallToolResult, SendResult]:
        """Send an email from a mailbox, under that mailbox's oversight mode.

        In gated_send and gated_all mailboxes the email waits (hours or days) for a human to
        approve, edit or reject it; you get status pending_approval at once. In monitored and
        autonomous mailboxes it goes out at once. read_only mailboxes refuse. Safe to retry:
        the same email is sent at most once. With send_at it goes out later (status scheduled).
        """
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
        )
        return result(sent, send_line(sent))

    @mcp.tool(annotations=reads("Status of a send"))
    @agent_errors
    async def approval_status(send_id: SendId) -> Annotated[CallToolResult, StatusResult]:
        """Where a send stands: pending_approval, scheduled, sending, sent, rejected, expired,
        cancelled, blocked or failed; who decided, when, with what reason and edits."""
        return _status(await app.sends.status(send_id))

    @mcp.tool(annotations=writes("Cancel a send", destructive=True, idempotent=True))
    @agent_errors
    async def cancel_send(send_id: SendId) -> Annotated[CallToolResult, StatusResult]:
        """Stop a send that has not been delivered yet (pending_approval or scheduled)."""
        return _status(await app.sends.cancel(send_id, actor="agent"))

    @mcp.tool(annotations=reads("List sends"))
    @agent_errors
    async def list_sends(
        mailbox: Annotated[str | None, Field(description="Only this mailbox's sends.")] = None,
        status: Annotated[SendStatus | None, Field(description="Only sends with this status.")] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="Page size.")] = 20,
        cursor: Annotated[str | None, Field(description="next_cursor from the previous page.")] = None,
    ) -> Annotated[CallToolResult, SendPage]:
        """List sends, newest first, optionally by mailbox and status; paginated with cursor."""
        page = await app.sends.search(mailbox=mailbox, status=status, limit=limit, cursor=cursor)
        lines = [f"{s.send_id} {s.status} to {', '.join(s.to)}: {s.subject}" for s in page.sends]
        more = f"\nMore: pass cursor={page.next_cursor}" if page.next_cursor else ""
        return result(page, ("\n".join(lines) or "No sends.") + more)
