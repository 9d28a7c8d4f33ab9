"""A client that cancels calls and leaves mid-call is normal: no tracebacks (issue 21, item 4)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.serve import Serve

pytestmark = pytest.mark.e2e


async def cancelling_client(serve: Serve, mode: str) -> None:
    """Calls cut off after 0, 2, 4 ... ms, then the session closes with the last one in flight."""
    headers = {"Authorization": f"Bearer {serve.token('agent')}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{serve.url}/mcp", http_client=http), mode=mode) as client,
    ):
        for i in range(30):
            with anyio.move_on_after(0.002 * i):
                await client.call_tool(
                    "durable_send", {"to": ["b@example.com"], "subject": uuid.uuid4().hex, "body": "b"}
                )
            with anyio.move_on_after(0.002 * i):
                await client.call_tool("list_sends", {})


async def test_clients_that_cancel_mid_call_leave_one_line_not_tracebacks(serve: Serve) -> None:
    serve.start()
    for mode in ("legacy", "legacy", "legacy", "auto"):
        with contextlib.suppress(Exception):  # the client may trip over its own cut-offs; not our concern
            await cancelling_client(serve, mode)
    await asyncio.sleep(1.0)  # late notifications and cleanup are logged by now
    log = (serve.data_dir / "serve.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert [line for line in log.splitlines() if line.startswith(("ERROR", "CRITICAL"))] == []
    # And the server is as good as before.
    async with serve.mcp() as client:
        listed = await client.call_tool("list_sends", {"limit": 1})
        assert not listed.is_error, listed.content
    assert serve.stop() == 0
