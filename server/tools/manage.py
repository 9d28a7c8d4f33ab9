"""Agent tool for tidying a mailbox: manage_email (archive, move, label, read flags, trash)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from server.app import Mailgate
from server.manage import MAX_IDS, ManageResult
from server.tools.common import Mailbox, agent_errors, result, writes
from server.tools.scope import requester
from workflows.read_models import Action


def register(mcp: MCPServer, app: Mailgate) -> None:
    @mcp.tool(annotations=writes("Archive, move, label or trash emails", destructive=False, idempotent=True))
    @agent_errors
    async def manage_email(
        email_ids: Annotated[
            list[Annotated[str, Field(max_length=100)]],
            Field(min_length=1, max_length=MAX_IDS, description="email_ids from check_inbox or search_email."),
        ],
        action: Annotated[Action, Field(description="trash moves to the trash folder; nothing is deleted.")],
        mailbox: Mailbox = None,
        folder: Annotated[str | None, Field(description="For move: the folder, such as 'Receipts'.")] = None,
        label: Annotated[str | None, Field(description="For label and unlabel: the label.")] = None,
    ) -> Annotated[CallToolResult, ManageResult]:
        """Archive, move, label, unlabel, mark read or unread, or trash up to 100 emails at once;
        the answer says per id what happened. Obeys the mailbox's oversight mode: read_only
        changes nothing; in gated modes a large trash waits for a human (approval_id; call again
        with the same ids to see how it stands). Audited."""
        # The agent by name: a trash request's requester, whose owner may not decide it.
        done = await app.manager.manage(
            app.default_mailbox(mailbox), email_ids, action, folder=folder, label=label, actor=requester()
        )
        lines = [f"{r.email_id}: {r.result}" for r in done.results]
        head = f"{action} on {len(done.results)} emails, {done.changed} changed"
        if done.approval_id:
            head += f"; trash request {done.approval_id} is {done.approval_status}"
        return result(done, head + ":\n" + "\n".join(lines))
