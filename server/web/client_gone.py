"""A client that goes away mid-call is normal: one line in the log, not chained tracebacks.

An MCP client that cancels a call and closes its session races its own notifications: the
SDK's transport then meets closed streams, logs them as errors with tracebacks and tries to
answer a response that is already complete (which uvicorn logs again). Both are turned into
one INFO line here; any other error keeps its traceback.
"""

from __future__ import annotations

import logging

import anyio
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

GONE = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, ClientDisconnect)
# The SDK's transports and servers, and uvicorn's error log: where a vanished client shows up.
LOGGERS = (
    "mcp.server.streamable_http",
    "mcp.server.streamable_http_manager",
    "mcp.server._streamable_http_modern",
    "mcp.server.sse",
    "mcp.server.runner",
    "mcp.server.mcpserver.server",
    "mcp.shared.jsonrpc_dispatcher",
    "uvicorn.error",
)
log = logging.getLogger("mailgate.http")


def client_gone(exc: BaseException | None) -> bool:
    """Whether an error only says that the other side is no longer there."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, GONE):
            return True
        if isinstance(exc, BaseExceptionGroup):
            return all(client_gone(inner) for inner in exc.exceptions)
        exc = exc.__cause__ or exc.__context__
    return False


class ClientGoneFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and client_gone(record.exc_info[1]):
            text = record.getMessage()
            record.msg, record.args = "%s: the client went away (a cancelled or closed call)", (text,)
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_gone_clients() -> None:
    """Install the filter once on every logger a vanished client reaches."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ClientGoneFilter) for f in logger.filters):
            logger.addFilter(ClientGoneFilter())


def forgive_gone_clients(app: ASGIApp) -> ASGIApp:
    """Run an MCP endpoint so that a client gone mid-request ends it with one log line."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        started = finished = False

        async def once(message: Message) -> None:
            nonlocal started, finished
            if finished:
                return  # the answer is complete: a late second answer has nowhere to go
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        try:
            await app(scope, receive, once)
        except Exception as exc:
            if not client_gone(exc):
                raise
            log.debug("an MCP client went away mid-request (%s)", type(exc).__name__)
            if not started:
                await once({"type": "http.response.start", "status": 400, "headers": []})
                await once({"type": "http.response.body", "body": b""})

    return guarded
