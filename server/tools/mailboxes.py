"""Agent tools for mailboxes: list_mailboxes, get_mailbox, create_mailbox."""

from __future__ import annotations

from typing import Annotated

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from server.app import Mailgate
from server.audit import AuditPage, audit_log
from server.errors import InvalidInput
from server.tools.common import Cursor, Mailbox, ResponseFormat, agent_errors, reads, result, writes
from server.tools.scope import current_agent, requester
from server.views import MailboxSummary
from workflows.models import MailboxConfig, OversightMode

MODE_MEANING: dict[OversightMode, str] = {
    "read_only": "it may read mail but not send",
    "gated_all": "every send waits for a human, and new inbound mail stays hidden until a human releases it",
    "gated_send": "every send waits for a human to approve it",
    "monitored": "sends go out at once; a human reviews them afterwards",
    "autonomous": "sends go out at once, with an audit record",
}


class MailboxList(BaseModel):
    mailboxes: list[MailboxSummary]


class UpgradeRequested(BaseModel):
    mailbox: str
    request_id: str
    mode: OversightMode
    expires_at: str


POLICY_FIELDS = {"approvers", "reviewers", "allow", "deny", "rate_per_hour", "rate_per_day", "approval_window_hours"}


class MailboxView(MailboxConfig):
    pending_upgrades: int = 0
    unacked_reviews: int = 0
    meaning: str
    send_as: list[str] = Field(default=[], description="Aliases durable_send and reply_email take as from_alias.")
    has_inbox: bool = Field(default=True, description="False: a send-only mailbox; inbox tools refuse.")


def register(mcp: MCPServer, app: Mailgate) -> None:
    @mcp.tool(annotations=reads("List mailboxes"))
    @agent_errors
    async def list_mailboxes() -> Annotated[CallToolResult, MailboxList]:
        """The mailboxes you can use, each with its oversight mode."""
        boxes = [b for b in await app.mailboxes.all() if current_agent().can_use(b.address)]
        lines = [f"{b.address}: {b.oversight_mode} ({MODE_MEANING[b.oversight_mode]})" for b in boxes]
        return result(MailboxList(mailboxes=boxes), "\n".join(lines) or "No mailboxes yet; create_mailbox makes one.")

    @mcp.tool(annotations=reads("Get a mailbox"))
    @agent_errors
    async def get_mailbox(
        mailbox: Mailbox = None, response_format: ResponseFormat = "concise"
    ) -> Annotated[CallToolResult, MailboxView]:
        """A mailbox's oversight mode and what it means for your sends; detailed adds its
        policies (approvers, reviewers, allow/deny lists, rate limits, approval window)."""
        mailbox = app.default_mailbox(mailbox)
        state = await app.mailboxes.state(mailbox)
        config = state.config
        entry = next((e for e in app.settings.mailboxes if e.address.lower() == config.address.lower()), None)
        view = MailboxView(
            **config.model_dump(),
            pending_upgrades=sum(1 for u in state.upgrades if u.status == "pending"),
            unacked_reviews=sum(1 for r in state.reviews if r.acked_by is None),
            meaning=MODE_MEANING[config.mode],
            send_as=list(entry.send_as) if entry else [],
            has_inbox=entry.has_inbox if entry else True,
        )
        text = f"{config.address} is {config.mode}: {MODE_MEANING[config.mode]}."
        if not view.has_inbox:
            text += " Send-only: it has no inbox to read."
        if view.send_as:
            text += f" It may send as (from_alias): {', '.join(view.send_as)}."
        if response_format == "detailed":
            return result(view, text)
        return result(view, text, exclude=POLICY_FIELDS)

    @mcp.tool(annotations=writes("Create a mailbox", destructive=False, idempotent=False))
    @agent_errors
    async def create_mailbox(
        address: Annotated[str, Field(description="The new mailbox's address.", examples=["research@mailgate.local"])],
        display_name: Annotated[str, Field(description="Name shown in From.", max_length=100)] = "",
        oversight_mode: Annotated[
            OversightMode | None,
            Field(description="Optional, and only a mode at least as strict as the server's default."),
        ] = None,
    ) -> Annotated[CallToolResult, MailboxConfig]:
        """Create a sandbox mailbox. It starts in the server's default mode (gated_send unless a
        human configured otherwise); you may ask for a stricter mode, never a looser one."""
        config = await app.mailboxes.create(
            address, created_by=requester(), role="agent", mode=oversight_mode, display_name=display_name
        )
        agent = current_agent()
        if not agent.all_mailboxes:
            await anyio.to_thread.run_sync(app.identities.add_agent_mailbox, agent.name, config.address)
        return result(config, f"Created {config.address} in mode {config.mode}: {MODE_MEANING[config.mode]}.")


def register_trust(mcp: MCPServer, app: Mailgate) -> None:
    @mcp.tool(annotations=writes("Tighten a mailbox's oversight", destructive=False, idempotent=True))
    @agent_errors
    async def set_oversight_mode(
        mode: Annotated[
            OversightMode, Field(description="The new mode; it must be at least as strict as the current.")
        ],
        mailbox: Mailbox = None,
        reason: Annotated[str, Field(description="Why, for the audit log.", max_length=500)] = "",
    ) -> Annotated[CallToolResult, MailboxConfig]:
        """Make a mailbox stricter (read_only is strictest, then gated_all, gated_send, monitored,
        autonomous). You can only tighten; to loosen, call request_upgrade and ask a human."""
        mailbox = app.default_mailbox(mailbox)
        config = await app.mailboxes.set_mode(mailbox, mode, actor=requester(), role="agent", reason=reason)
        return result(config, f"{config.address} is now {config.mode}: {MODE_MEANING[config.mode]}.")

    @mcp.tool(annotations=writes("Ask a human to loosen a mailbox", destructive=False, idempotent=False))
    @agent_errors
    async def request_upgrade(
        mode: Annotated[OversightMode, Field(description="The looser mode you would like.")],
        reason: Annotated[
            str, Field(description="Why you need it; the human reads this.", min_length=1, max_length=500)
        ],
        mailbox: Mailbox = None,
    ) -> Annotated[CallToolResult, UpgradeRequested]:
        """Ask the mailbox's humans to loosen its oversight. They receive a one-time code (valid
        24 hours); if they agree, they give it to you and you call apply_upgrade with it."""
        mailbox = app.default_mailbox(mailbox)
        upgrade = await app.mailboxes.request_upgrade(mailbox, mode, reason, requested_by=requester())
        view = UpgradeRequested(
            mailbox=upgrade.mailbox,
            request_id=upgrade.request.request_id,
            mode=upgrade.request.mode,
            expires_at=upgrade.request.expires_at.isoformat(timespec="seconds"),
        )
        return result(
            view,
            f"Upgrade of {view.mailbox} to {view.mode} requested. A human has been asked; if they agree they "
            "will give you a one-time code for apply_upgrade. Until then the mailbox keeps its mode.",
        )

    @mcp.tool(annotations=writes("Apply a human's upgrade code", destructive=False, idempotent=False))
    @agent_errors
    async def apply_upgrade(
        code: Annotated[str, Field(description="The one-time code a human gave you.", min_length=1, max_length=32)],
        mailbox: Mailbox = None,
    ) -> Annotated[CallToolResult, MailboxConfig]:
        """Loosen a mailbox with the one-time code a human gave you after request_upgrade.
        Codes are single use, expire after 24 hours and stop working after 5 wrong tries."""
        mailbox = app.default_mailbox(mailbox)
        config = await app.mailboxes.apply_upgrade(mailbox, code, actor=requester())
        return result(config, f"{config.address} is now {config.mode}: {MODE_MEANING[config.mode]}.")

    @mcp.tool(annotations=reads("Audit log"))
    @agent_errors
    async def get_audit_log(
        mailbox: Annotated[str | None, Field(description="Only this mailbox.")] = None,
        send_id: Annotated[str | None, Field(description="Only this send.")] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="Page size.")] = 20,
        cursor: Cursor = None,
        response_format: ResponseFormat = "concise",
    ) -> Annotated[CallToolResult, AuditPage]:
        """What happened, newest first: sends, decisions with approver and reason, edits, mode
        changes with who and when, upgrade requests and their outcome. concise cuts each
        event's detail at 120 characters."""
        if not (mailbox or send_id or current_agent().all_mailboxes):
            # The scope middleware checked a named mailbox or send; "everything" is not this agent's.
            raise InvalidInput("name one of your mailboxes (mailbox=...) or a send_id; list_mailboxes shows yours")
        page = await audit_log(app.mailboxes, app.sends, mailbox=mailbox, send_id=send_id, limit=limit, cursor=cursor)
        if response_format == "concise":
            page = page.model_copy(
                update={"events": [e.model_copy(update={"detail": e.detail[:120]}) for e in page.events]}
            )
        lines = [
            f"{e.at.isoformat(timespec='seconds')} {e.kind} by {e.actor}"
            + (f" [{e.send_id}]" if e.send_id else f" [{e.mailbox}]")
            + (f": {e.detail}" if e.detail else "")
            for e in page.events
        ]
        more = f"\nMore: pass cursor={page.next_cursor}" if page.next_cursor else ""
        return result(page, ("\n".join(lines) or "Nothing recorded yet.") + more)
