"""The SDK's in-memory MCP client on an app under test, and the text of a tool result."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from mcp import Client
from mcp.types import CallToolResult, TextContent

from server.app import Mailgate
from server.mcp_server import build_mcp


@contextlib.asynccontextmanager
async def connected(app: Mailgate) -> AsyncIterator[Client]:
    # A fixture would enter and exit the client's cancel scope in different tasks.
    async with Client(build_mcp(app)) as client:
        yield client


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))
