"""The README's first-agent snippets run as written, against a real `mailgate serve` (issue 21,
items 3 and 10): the Python client, the `mcp-remote` line (with the pinned mcp-remote and the
Inspector's Node from .tools/), and what mcp-remote tells a user who forgot the token."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.support.interop import AGENT_TOOLS, INSPECTOR_DIR, INSTALL_HINT, ROOT, list_all_tools
from tests.support.serve import Serve

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

README = (ROOT / "README.md").read_text()
MCP_REMOTE_VERSION = "0.15.1"


def snippet(name: str) -> str:
    found = re.search(rf"<!-- readme-test: {name} -->\n```\w+\n(.*?)```", README, re.S)
    assert found, f"the README has no snippet marked {name}"
    return found.group(1)


def test_the_python_client_snippet_sends_from_the_default_mailbox(stack: Serve, tmp_path: Path) -> None:
    script = tmp_path / "first_call.py"
    script.write_text(snippet("python-client"))
    env = {**os.environ, "MAILGATE_URL": stack.url, "MAILGATE_AGENT_TOKEN": stack.token("agent")}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "'status': 'pending_approval'" in done.stdout and "'mailbox': 'agent@mailgate.local'" in done.stdout


@pytest.fixture(scope="session")
def mcp_remote() -> list[str]:
    """The pinned mcp-remote, run by the Inspector's Node (both from tests/interop/package.json)."""
    node = INSPECTOR_DIR / "node_modules" / ".bin" / "node"
    script = INSPECTOR_DIR / "node_modules" / "mcp-remote" / "dist" / "proxy.js"
    if not (node.exists() and script.exists()):
        message = f"mcp-remote not found in {INSPECTOR_DIR}: {INSTALL_HINT}"
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return [str(node), str(script)]


def readme_mcp_remote_args(stack: Serve) -> list[str]:
    """The README's line, with its URL pointed at this stack and ${MAILGATE_AGENT_TOKEN} expanded."""
    words = shlex.split(snippet("mcp-remote").strip())
    assert words[:3] == ["npx", "-y", f"mcp-remote@{MCP_REMOTE_VERSION}"], words
    args = [w.replace("http://127.0.0.1:8025", stack.url) for w in words[3:]]
    return [a.replace("${MAILGATE_AGENT_TOKEN}", stack.token("agent")) for a in args]


def node_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "MCP_REMOTE_CONFIG_DIR": str(tmp_path),
    }


async def test_the_mcp_remote_line_reaches_every_tool(stack: Serve, mcp_remote: list[str], tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=mcp_remote[0], args=[*mcp_remote[1:], *readme_mcp_remote_args(stack)], env=node_env(tmp_path)
    )
    async with Client(params) as client:
        assert {t.name for t in await list_all_tools(client)} >= AGENT_TOOLS
        boxes = await client.call_tool("list_mailboxes", {})
        assert not boxes.is_error, boxes.content


def test_mcp_remote_without_the_token_is_told_how_to_pass_it(
    stack: Serve, mcp_remote: list[str], tmp_path: Path
) -> None:
    # No OAuth flow that cannot work: mcp-remote ends at once with mailgate's explanation.
    done = subprocess.run(
        [*mcp_remote, f"{stack.url}/mcp"],
        env=node_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Authorization: Bearer TOKEN" in output and "no OAuth authorization server" in output, output[-3000:]


def test_the_banner_in_the_readme_is_the_one_serve_prints(stack: Serve) -> None:
    shown = re.search(r"```\n(mailgate is running.*?)```", README, re.S)
    assert shown
    labels = [line.split(":")[0].strip() for line in shown.group(1).splitlines()[1:]]
    log = (stack.data_dir / "serve.log").read_text(errors="replace")
    printed = log.split("mailgate is running", 1)[1].split("Press Ctrl-C")[0]
    assert labels == [line.split(":")[0].strip() for line in printed.strip().splitlines()[1:]]
    assert "send from:    agent@mailgate.local" in printed
