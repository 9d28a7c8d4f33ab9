"""Which agent is calling, and what it may reach: one place every tool (and every new tool) passes.

The HTTP middleware (server/web/security.py) resolves the bearer token to an `Agent` and leaves
it on the request; this MCP middleware reads it for each message, keeps it in a context variable
for the tools, hides write tools from read-only agents, and refuses any call whose mailbox
(the ``mailbox`` argument, the default mailbox when omitted, or the mailbox of a ``send_id``)
is not the agent's. stdio has no request: it is the built-in agent, with every mailbox.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, TextContent

from server.app import Mailgate
from server.errors import MailgateError, NotFound
from server.identities import DEFAULT, Agent

_current: contextvars.ContextVar[Agent] = contextvars.ContextVar("mailgate_agent", default=DEFAULT)

# Tool arguments naming a send, whose mailbox decides whether the agent may see it.
SEND_ARGS = ("send_id",)
# Tools whose mailbox argument is an optional filter (none: every mailbox), not "the default
# mailbox when omitted": they filter their own answers to the agent's mailboxes.
FILTERING = frozenset({"list_sends", "get_audit_log"})


def current_agent() -> Agent:
    return _current.get()


def requester() -> str:
    """The name sends, audit entries and notices carry: the agent's own, `default` for the
    built-in agent of MAILGATE_AGENT_TOKEN and stdio."""
    return current_agent().name


def not_yours(mailbox: str) -> NotFound:
    return NotFound(
        f"mailbox {mailbox} not found or not yours; list_mailboxes shows the mailboxes you can use, "
        "and a human can add one to your scope with `mailgate agents`"
    )


def check_mailbox(mailbox: str) -> None:
    if not current_agent().can_use(mailbox):
        raise not_yours(mailbox)


def _agent_of(ctx: ServerRequestContext[Any, Any]) -> Agent:
    request = ctx.request
    state = getattr(request, "scope", {}).get("state", {}) if request is not None else {}
    agent = state.get("agent") if isinstance(state, Mapping) else None
    return agent if isinstance(agent, Agent) else DEFAULT


def request_principal(ctx: ServerRequestContext[Any, Any]) -> str:
    """Who a 2026-07-28 requestState is bound to: the agent whose token made the request."""
    return f"agent:{_agent_of(ctx).name}"


def _refusal(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=text)], is_error=True)


def install(mcp: MCPServer, app: Mailgate) -> None:
    writes = {
        tool.name
        for tool in mcp._tool_manager.list_tools()
        if tool.annotations is None or tool.annotations.read_only_hint is not True
    }

    async def scoped(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        agent = _agent_of(ctx)
        token = _current.set(agent)
        try:
            if ctx.method == "tools/call" and not agent.all_mailboxes:
                refusal = await _check_call(agent, ctx.params or {})
                if refusal is not None:
                    return refusal
            if ctx.method == "prompts/get" and not agent.all_mailboxes:
                mailbox = ((ctx.params or {}).get("arguments") or {}).get("mailbox")
                if isinstance(mailbox, str) and not agent.can_use(mailbox):
                    raise MCPError(INVALID_PARAMS, str(not_yours(mailbox)))
            if ctx.method == "resources/read" and not agent.all_mailboxes:
                uri = str((ctx.params or {}).get("uri", ""))
                address = uri.removeprefix("mailgate://mailboxes/").split("/")[0]
                if uri.startswith("mailgate://mailboxes/") and not agent.can_use(address):
                    raise MCPError(INVALID_PARAMS, str(not_yours(address)))
            answer = await call_next(ctx)
            if ctx.method == "tools/list" and agent.read_only:
                answer = _without_writes(answer)
            return answer
        finally:
            _current.reset(token)

    async def _check_call(agent: Agent, params: Mapping[str, Any]) -> CallToolResult | None:
        name = str(params.get("name", ""))
        arguments = params.get("arguments") or {}
        if agent.read_only and name in writes:
            return _refusal(f"{name} is not available: agent {agent.name} is read-only")
        if not isinstance(arguments, Mapping):
            return None
        try:
            tool = mcp._tool_manager.get_tool(name)
            takes_mailbox = tool is not None and "mailbox" in (tool.parameters.get("properties") or {})
            mailbox = arguments.get("mailbox")
            if isinstance(mailbox, str) and mailbox:
                check_mailbox(mailbox)
            elif takes_mailbox and name not in FILTERING:
                check_mailbox(app.default_mailbox(None))
            for key in SEND_ARGS:
                send_id = arguments.get(key)
                if isinstance(send_id, str) and send_id:
                    state = await app.sends.status(send_id)
                    if not agent.can_use(state.mailbox):
                        raise NotFound(f"send {send_id} not found or not yours; list_sends shows your sends")
        except MailgateError as exc:
            return _refusal(str(exc))
        return None

    def _without_writes(answer: HandlerResult) -> HandlerResult:
        # The chain answers with the wire dict by the time it reaches this middleware.
        if not isinstance(answer, dict) or not isinstance(answer.get("tools"), list):
            return answer
        return {**answer, "tools": [t for t in answer["tools"] if t.get("name") not in writes]}

    mcp.middleware.append(scoped)
