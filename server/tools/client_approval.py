"""Ask the human at the agent's own client to open a pending send's dashboard page.

Opt in per mailbox (``client_approval = "link"``). Only URL-mode elicitation is used: the client
shows the human a link, and the human signs in to the dashboard and decides there. The URL is the
send's page and carries no credential; what the client answers (accept, decline, cancel) decides
nothing. Never a form: a client that auto-answers forms would be the agent approving itself.

On handshake versions (2025-11-25) the request goes out mid-call; on 2026-07-28, where a tool
cannot send requests of its own, the first call answers with an ``InputRequiredResult`` holding
the same URL request, and the client's retry (durable_send is idempotent) gets the usual answer.
"""

from __future__ import annotations

import logging

from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp.types import ElicitRequest, ElicitRequestURLParams, InputRequiredResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from server.app import Mailgate
from server.views import SendResult
from workflows.notices import send_url

log = logging.getLogger("mailgate.mcp")
ASKED = "mailgate:dashboard-link-asked"
MESSAGE = (
    "An email from {mailbox} waits for a human's approval. Open mailgate's dashboard, sign in, "
    "and approve, edit or reject it there."
)


def supports_url_elicitation(ctx: Context) -> bool:
    capabilities = ctx.client_capabilities
    return bool(capabilities and capabilities.elicitation and capabilities.elicitation.url is not None)


async def ask_to_open(ctx: Context, app: Mailgate, sent: SendResult) -> InputRequiredResult | None:
    """An InputRequiredResult to answer with first (2026-07-28), or None to answer as usual."""
    if sent.status != "pending_approval":
        return None
    # The send has just read it (one query of mailgate's record per call is enough, issue 20).
    config = app.mailboxes.just_read(sent.mailbox) or await app.mailboxes.config(sent.mailbox)
    if config.client_approval != "link":
        return None
    if not supports_url_elicitation(ctx):
        # Also every handshake-era client of a door without MCP sessions (MAILGATE_MCP_STATELESS):
        # no initialize reached this door, and no request could reach the client mid-call anyway.
        log.info("not asking the client to open the dashboard for %s: it declared no URL elicitation", sent.send_id)
        return None
    params = ElicitRequestURLParams(
        message=MESSAGE.format(mailbox=sent.mailbox),
        url=send_url(app.settings.http_url, sent.send_id),
        elicitation_id=f"open-{sent.send_id}",
    )
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        if ctx.request_state == ASKED or ctx.input_responses:
            return None  # the retry after the human was asked: the usual answer
        return InputRequiredResult(input_requests={"open_dashboard": ElicitRequest(params=params)}, request_state=ASKED)
    try:
        answer = await ctx.elicit_url(params.message, params.url, params.elicitation_id or "")
    except (MCPError, RuntimeError) as exc:  # no back channel, or a client that failed: today's answer
        log.info("could not show the dashboard link for %s: %r", sent.send_id, exc)
        return None
    log.info("the client answered %s to the dashboard link for %s (it decides nothing)", answer.action, sent.send_id)
    return None
