"""Agent tools for drafts a human sends from their own mail client: create_draft, list_drafts,
update_draft, delete_draft."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from server.app import Mailgate
from server.drafts import Draft, DraftList
from server.tools.common import Mailbox, agent_errors, reads, result, writes

DraftId = Annotated[str, Field(description="A draft_id from create_draft or list_drafts.", max_length=100)]
People = Annotated[list[Annotated[str, Field(max_length=400)]] | None, Field(max_length=50)]


class Deleted(BaseModel):
    draft_id: str
    deleted: bool


def _line(draft: Draft) -> str:
    return f"draft {draft.draft_id} to {', '.join(draft.to) or '(nobody yet)'}: {draft.subject}"


def register(mcp: MCPServer, app: Mailgate) -> None:
    @mcp.tool(annotations=writes("Save a draft", destructive=False, idempotent=False))
    @agent_errors
    async def create_draft(
        subject: Annotated[str, Field(description="Empty with reply_to_email_id: Re: its subject.")],
        body: Annotated[str, Field(description="Plain-text body.")],
        mailbox: Mailbox = None,
        to: People = None,
        cc: People = None,
        reply_to_email_id: Annotated[
            str | None, Field(description="Draft a reply to this email (threaded; To defaults to its sender).")
        ] = None,
    ) -> Annotated[CallToolResult, Draft]:
        """Save a draft in the mailbox's Drafts folder for a human to edit and send from their
        own mail client. Nothing is sent. Refused in read_only mailboxes."""
        draft = await app.drafts.create(
            app.default_mailbox(mailbox), to=to, cc=cc, subject=subject, body=body, reply_to_email_id=reply_to_email_id
        )
        return result(draft, "Saved " + _line(draft))

    @mcp.tool(annotations=reads("List drafts"))
    @agent_errors
    async def list_drafts(
        mailbox: Mailbox = None, limit: Annotated[int, Field(ge=1, le=100, description="At most this many.")] = 50
    ) -> Annotated[CallToolResult, DraftList]:
        """The drafts you saved in a mailbox, newest first."""
        drafts = await app.drafts.listing(app.default_mailbox(mailbox), limit)
        return result(drafts, "\n".join(_line(d) for d in drafts.drafts) or "No drafts.")

    @mcp.tool(annotations=writes("Change a draft", destructive=False, idempotent=True))
    @agent_errors
    async def update_draft(
        draft_id: DraftId,
        mailbox: Mailbox = None,
        subject: Annotated[str | None, Field(description="New subject.")] = None,
        body: Annotated[str | None, Field(description="New plain-text body.")] = None,
        to: People = None,
        cc: People = None,
    ) -> Annotated[CallToolResult, Draft]:
        """Change a draft you saved; what you leave out stays as it was. Its id may change."""
        draft = await app.drafts.update(
            app.default_mailbox(mailbox), draft_id, to=to, cc=cc, subject=subject, body=body
        )
        return result(draft, "Updated " + _line(draft))

    @mcp.tool(annotations=writes("Delete a draft", destructive=True, idempotent=False))
    @agent_errors
    async def delete_draft(draft_id: DraftId, mailbox: Mailbox = None) -> Annotated[CallToolResult, Deleted]:
        """Delete a draft you saved (only drafts; never other mail)."""
        gone = await app.drafts.delete(app.default_mailbox(mailbox), draft_id)
        return result(Deleted(draft_id=gone, deleted=True), f"Draft {gone} deleted.")
