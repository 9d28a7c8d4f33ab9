"""`mailgate mcp` uses the mailgate that already runs: through the data dir, or MAILGATE_URL with
the agent token; it starts a stack of its own only when none runs (issue 21, item 7)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.support.interop import AGENT_TOOLS, list_all_tools, mailgate_script
from tests.support.serve import Serve

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def first_answer(env: dict[str, str]) -> tuple[dict[str, object] | None, str, int]:
    """Start `mailgate mcp`, initialize, close stdin: its first answer, its stderr and its exit code."""
    done = subprocess.run(
        [str(mailgate_script()), "mcp"],
        input=json.dumps(INITIALIZE) + "\n",
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    line = done.stdout.splitlines()[0] if done.stdout.strip() else ""
    return (json.loads(line) if line else None), done.stderr, done.returncode


def test_with_the_data_dir_of_a_running_serve_it_attaches_and_starts_nothing(stack: Serve) -> None:
    temporal = stack.temporal_pid()
    answer, stderr, code = first_answer({"MAILGATE_DATA_DIR": str(stack.data_dir)})
    assert code == 0, stderr
    assert answer is not None and answer["result"]["serverInfo"]["name"] == "mailgate"  # type: ignore[index]
    assert f"using the mailgate that runs for data dir {stack.data_dir}" in stderr
    assert "started Temporal" not in stderr and "mailgate is running" not in stderr
    assert stack.temporal_pid() == temporal


async def test_with_mailgate_url_and_the_agent_token_it_relays_and_starts_nothing(stack: Serve, tmp_path: Path) -> None:
    empty = tmp_path / "nothing-runs-here"
    env = {"MAILGATE_DATA_DIR": str(empty), "MAILGATE_URL": stack.url, "MAILGATE_AGENT_TOKEN": stack.token("agent")}
    params = StdioServerParameters(command=str(mailgate_script()), args=["mcp"], env=env)
    async with Client(params) as client:
        assert {t.name for t in await list_all_tools(client)} >= AGENT_TOOLS
        sent = await client.call_tool("durable_send", {"to": ["carol@example.com"], "subject": "relay", "body": "b"})
        assert not sent.is_error, sent.content
        assert sent.structured_content is not None and sent.structured_content["status"] == "pending_approval"
        status = await client.call_tool("approval_status", {"send_id": sent.structured_content["send_id"]})
        assert status.structured_content is not None and status.structured_content["status"] == "pending_approval"
        refused = await client.call_tool("durable_send", {"to": ["carol@example.com"], "body": "b"})
        assert refused.is_error  # the remote server's own one-line answer comes through
        assert "subject is required" in " ".join(getattr(b, "text", "") for b in refused.content)
        assert len((await client.list_prompts()).prompts) >= 1
    assert not (empty / "temporal.json").exists() and not (empty / "stack.json").exists()
    # The human side sees the relayed send on the real stack.
    pending = stack.cli("approvals", "list", "--json")
    assert sent.structured_content["send_id"] in pending.stdout


def test_a_wrong_token_for_mailgate_url_ends_at_once_with_one_line(stack: Serve, tmp_path: Path) -> None:
    env = {
        "MAILGATE_DATA_DIR": str(tmp_path / "d"),
        "MAILGATE_URL": stack.url,
        "MAILGATE_AGENT_TOKEN": "not-the-agent-token-" + "x" * 20,
    }
    answer, stderr, code = first_answer(env)
    assert code == 1 and answer is None
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "MAILGATE_AGENT_TOKEN" in lines[0] and stack.url in lines[0], stderr
    _, stderr, code = first_answer({**env, "MAILGATE_AGENT_TOKEN": ""})
    assert code != 0 and "MAILGATE_AGENT_TOKEN" in stderr
