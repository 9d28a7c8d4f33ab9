"""`mailgate mcp` for a mailgate that runs elsewhere: MCP over stdio here, relayed to the
remote server's streamable HTTP endpoint with the agent token (MAILGATE_URL + MAILGATE_AGENT_TOKEN).

Nothing starts locally: no Temporal, no worker, no listener. The remote server answers every
request, so its tools, resources, prompts and refusals are exactly what the client sees.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx2
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from server.errors import Unavailable
from server.settings import Settings, SettingsError

R = TypeVar("R")


def _progress_token(ctx: ServerRequestContext[Any, Any]) -> str | int | None:
    meta: Any = ctx.meta or {}
    token = meta.get("progress_token", meta.get("progressToken")) if isinstance(meta, dict) else None
    return token if isinstance(token, str | int) else None


def _paged(
    fetch: Callable[..., Awaitable[R]],
) -> Callable[[ServerRequestContext[Any, Any], types.PaginatedRequestParams | None], Awaitable[R]]:
    """A list handler that asks the remote server for the same page."""

    async def handler(ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None) -> R:
        return await fetch(cursor=params.cursor if params else None)

    return handler


def relay(remote: Client) -> Server[Any]:
    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        token = _progress_token(ctx)

        async def progress(progress: float, total: float | None, message: str | None) -> None:
            if token is not None:
                await ctx.session.send_progress_notification(
                    token, progress, total, message, related_request_id=str(ctx.request_id)
                )

        return await remote.call_tool(params.name, params.arguments or {}, progress_callback=progress)

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult | types.InputRequiredResult:
        return await remote.read_resource(params.uri)

    async def get_prompt(
        ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult | types.InputRequiredResult:
        return await remote.get_prompt(params.name, params.arguments)

    info = remote.server_info
    return Server(
        info.name if info else "mailgate",
        version=info.version if info else "",
        instructions=remote.instructions,
        on_list_tools=_paged(remote.list_tools),
        on_call_tool=call_tool,
        on_list_resources=_paged(remote.list_resources),
        on_list_resource_templates=_paged(remote.list_resource_templates),
        on_read_resource=read_resource,
        on_list_prompts=_paged(remote.list_prompts),
        on_get_prompt=get_prompt,
    )


async def relay_stdio(settings: Settings) -> int:
    assert settings.url is not None
    if settings.agent_token is None:
        raise SettingsError(
            f"MAILGATE_URL is set ({settings.url}): set MAILGATE_AGENT_TOKEN to that server's agent token too"
        )
    url = f"{settings.url}/mcp"
    headers = {"Authorization": f"Bearer {settings.agent_token.get_secret_value()}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=None)) as http:
        try:
            remote = await Client(streamable_http_client(url, http_client=http)).__aenter__()
        except Exception as exc:
            raise Unavailable(
                f"cannot use the mailgate at {url}: {describe(exc)}; check MAILGATE_URL and MAILGATE_AGENT_TOKEN"
            ) from None
        try:
            print(f"mailgate: relaying MCP over stdio to {url} (nothing runs locally)", file=sys.stderr, flush=True)
            server = relay(remote)
            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())
        finally:
            await remote.__aexit__(None, None, None)
    return 0


def describe(exc: BaseException) -> str:
    """The innermost reason, one line: a refused token, a connection refused, a bad URL."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx2.HTTPStatusError):
        if exc.response.status_code == 401:
            return "it refused the agent token (401)"
        return f"it answered HTTP {exc.response.status_code}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
