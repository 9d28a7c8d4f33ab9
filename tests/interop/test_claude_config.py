"""claude_config.example.json starts mailgate the way Claude Desktop does, with no other set-up."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sysconfig
import time
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from server.embedded import pid_alive
from tests.support.interop import ROOT, list_all_tools
from tests.support.ports import free_port
from tests.support.wait import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

EXAMPLE = ROOT / "claude_config.example.json"


PLACEHOLDER = "/absolute/path/to/mailgate"


def test_the_example_is_a_claude_desktop_stdio_entry() -> None:
    config = json.loads(EXAMPLE.read_text())
    assert set(config) == {"mcpServers"}
    entry = config["mcpServers"]["mailgate"]
    # The keys Claude Desktop reads for a local (stdio) server; anything else would be ignored.
    assert set(entry) <= {"command", "args", "env"} and entry["args"] == ["mcp"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in entry.get("env", {}).items())
    # Claude Desktop does not see the shell's PATH: the command is a full path, with a placeholder
    # for the clone that docs/claude-desktop.md tells users to replace (the venv of the Quick start).
    command = Path(entry["command"])
    assert command.is_absolute() and entry["command"] == f"{PLACEHOLDER}/.venv/bin/mailgate"
    assert (ROOT / ".venv" / "bin" / "mailgate").name == command.name


def claude_command(entry: dict[str, object]) -> str:
    """The example's command as a user fills it in: this environment's `mailgate`."""
    assert str(entry["command"]).startswith(PLACEHOLDER)
    return str(Path(sysconfig.get_path("scripts")) / "mailgate")


def claude_path() -> str:
    """The PATH Claude Desktop passes: not the user's shell PATH with the venv on it."""
    return os.environ.get("PATH", "/usr/bin:/bin")


async def test_claude_desktop_starts_mailgate_from_the_example(tmp_path: Path) -> None:
    entry = json.loads(EXAMPLE.read_text())["mcpServers"]["mailgate"]
    path = claude_path()
    data = tmp_path / "data"
    env = {
        **entry.get("env", {}),
        "PATH": path,
        # What a user adds when the defaults do not suit: their own data dir, and ports that are
        # free here (the defaults 8025/2525/7233 may be taken by another mailgate on this machine).
        "MAILGATE_DATA_DIR": str(data),
        "MAILGATE_PORT": str(free_port()),
        "MAILGATE_SMTP_PORT": str(free_port()),
        "MAILGATE_TEMPORAL_PORT": str(free_port()),
        "MAILGATE_TEMPORAL_UI_PORT": str(free_port()),
    }
    # The SDK's stdio client, like Claude Desktop, passes only a few safe variables of its own
    # environment (HOME, PATH, ...) plus the entry's env; the command is resolved through that PATH.
    params = StdioServerParameters(command=claude_command(entry), args=entry["args"], env=env)
    temporal = 0
    try:
        async with Client(params) as client:
            names = {t.name for t in await list_all_tools(client)}
            assert {"durable_send", "approval_status", "list_mailboxes"} <= names
            boxes = await client.call_tool("list_mailboxes", {})
            assert boxes.structured_content is not None, boxes.content
            default = entry.get("env", {}).get("MAILGATE_DEFAULT_MAILBOX", "agent@mailgate.local")
            assert default in {m["address"] for m in boxes.structured_content["mailboxes"]}
            # The example sets a default mailbox: a send that names none goes from it.
            sent = await client.call_tool("durable_send", {"to": ["bob@example.com"], "subject": "Hi", "body": "b"})
            assert sent.structured_content is not None, sent.content
            assert sent.structured_content["mailbox"] == default
            temporal = int(json.loads((data / "temporal.json").read_text())["pid"])
        # Claude Desktop closing the session stops the stack mailgate brought up for it.
        await eventually(lambda: not pid_alive(temporal), timeout=30)
    finally:
        if temporal and pid_alive(temporal):
            os.kill(temporal, signal.SIGKILL)


async def test_mailgate_mcp_exits_soon_after_the_client_closes_stdin(tmp_path: Path) -> None:
    """The MCP stdio shutdown starts with the client closing stdin; a client waits a little, then
    sends SIGTERM. mailgate must take the first hint and stop its whole stack by itself."""
    data = tmp_path / "data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")},
        "MAILGATE_DATA_DIR": str(data),
        "MAILGATE_PORT": str(free_port()),
        "MAILGATE_SMTP_PORT": "0",
        "MAILGATE_TEMPORAL_PORT": str(free_port()),
        "MAILGATE_TEMPORAL_UI_PORT": str(free_port()),
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sysconfig.get_path("scripts")) / "mailgate"),
        "mcp",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    temporal = 0
    try:
        hello = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        process.stdin.write(json.dumps(hello).encode() + b"\n")
        answer = json.loads(await asyncio.wait_for(process.stdout.readline(), 90))
        assert answer["result"]["serverInfo"]["name"] == "mailgate"
        temporal = int(json.loads((data / "temporal.json").read_text())["pid"])

        process.stdin.close()
        started = time.monotonic()
        returncode = await asyncio.wait_for(process.wait(), 30)
        assert returncode == 0
        # About a second normally; the bound leaves room for a loaded machine yet catches the
        # old stall, which sat out a 10 s timeout after the client had gone.
        assert time.monotonic() - started < 8, f"took {time.monotonic() - started:.1f}s to exit"
        assert not pid_alive(temporal), "the dev server outlived mailgate mcp"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if temporal and pid_alive(temporal):
            os.kill(temporal, signal.SIGKILL)
