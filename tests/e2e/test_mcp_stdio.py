"""`mailgate mcp` over stdio, as Claude Desktop starts it: it brings up the whole stack itself."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from server.embedded import pid_alive
from tests.support.serve import Serve
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e


async def test_stdio_brings_up_the_stack_and_a_human_can_approve_from_the_cli(tmp_path: Path) -> None:
    stack = Serve(tmp_path / "data")
    stack.data_dir.mkdir()
    env = {
        **stack.env(),
        "MAILGATE_PORT": str(stack.port),
        "MAILGATE_SMTP_PORT": str(stack.smtp_port),
        "MAILGATE_TEMPORAL_PORT": str(stack.temporal_port),
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "server.cli", "mcp"], env=env)
    async with Client(params) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"durable_send", "approval_status"} <= tools
        result = await client.call_tool(
            "durable_send",
            {"mailbox": "agent@mailgate.local", "to": ["bob@example.com"], "subject": "From Claude", "body": "Hi"},
        )
        assert result.structured_content is not None, result.content
        send_id = str(result.structured_content["send_id"])

        approve = subprocess.run(
            [sys.executable, "-m", "server.cli", "approvals", "approve", send_id, "--as", "alice"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert approve.returncode == 0, approve.stderr

        async def sent() -> bool:
            status = await client.call_tool("approval_status", {"send_id": send_id})
            return bool(status.structured_content and status.structured_content["status"] == "sent")

        for _ in range(100):
            if await sent():
                break
            await asyncio.sleep(0.1)
        assert await sent()
        temporal = stack.temporal_pid()

    rows = json.loads(stack.cli("sandbox", "list", "--json").stdout)
    assert [r["subject"] for r in rows] == ["From Claude"]
    # Closing stdin ends `mailgate mcp`, and with it the dev server it started.
    await eventually(lambda: not pid_alive(temporal), timeout=30)
