"""Agent tools for mailboxes: list_mailboxes, get_mailbox, create_mailbox."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from server.app import Mailgate
from server.mailboxes import MailboxSummary
from server.tools.common import agent_errors, reads, result, writes
from workflows.models import MailboxConfig, OversightMode

Mailbox = Annotated[str, Field(description="The mailbox's address.", examples=["agent@mailgate.local"])]

MODE_MEANING: dict[OversightMode, str] = {
    "read_only": "it may read mail but not send",
    "gated_all": "every send waits for a human, and new inbound mail stays hidden until a human releases it",
    "gated_send": "every send waits for a human to approve it",
    "monitored": "sends go out at once; a human reviews them afterwards",
    "autonomous": "sends go out at once, with an audit record",
}


class MailboxList(BaseModel):
    mailboxes: list[MailboxSummary]


class MailboxView(MailboxConfig):
    pending_upgrades: int = 0
    unacked_reviews: int = 0
    meaning: str


def register(mcp: MCPServer, app: Mailgate) -> None:
    @mcp.tool(annotations=reads("List mailboxes"))
    @agent_errors
    async def list_mailboxes() -> Annotated[CallToolResult, MailboxList]:
        """The mailboxes you can use, each with its oversight mode."""
        boxes = await app.mailboxes.list()
        lines = [f"{b.address}: {b.oversight_mode} ({MODE_MEANING[b.oversight_mode]})" for b in boxes]
        return result(MailboxList(mailboxes=boxes), "\n".join(lines) or "No mailboxes yet; create_mailbox makes one.")

    @mcp.tool(annotations=reads("Get a mailbox"))
    @agent_errors
    async def get_mailbox(mailbox: Mailbox) -> Annotated[CallToolResult, MailboxView]:
        """A mailbox's oversight mode, policies (allow/deny lists, rate limits, approval window)
        and what the mode means for your sends."""
        state = await app.mailboxes.state(mailbox)
        config = state.config
        view = MailboxView(
            **config.model_dump(),
            pending_upgrades=sum(1 for u in state.upgrades if u.status == "pending"),
            unacked_reviews=sum(1 for r in state.reviews if r.acked_by is None),
            meaning=MODE_MEANING[config.mode],
        )
        return result(view, f"{config.address} is {config.mode}: {MODE_MEANING[config.mode]}.")

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
            address, created_by="agent", role="agent", mode=oversight_mode, display_name=display_name
        )
        return result(config, f"Created {config.address} in mode {config.mode}: {MODE_MEANING[config.mode]}.")
