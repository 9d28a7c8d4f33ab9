"""Real MCP clients against a running `mailgate serve`: the SDK's own client over each transport,
and the MCP Inspector CLI (in .tools/inspector, installed by `tests/interop/install-inspector`)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sysconfig
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Tool

from tests.support.serve import Serve

ROOT = Path(__file__).resolve().parents[2]
INSPECTOR_DIR = ROOT / ".tools" / "inspector"
INSPECTOR_VERSION = "2.12.0"
INSTALL_HINT = "run tests/interop/install-inspector (needs npm; .ci/run does it for you)"

Transport = Literal["stdio", "http", "sse"]
TRANSPORTS: tuple[Transport, ...] = ("stdio", "http", "sse")
MODERN = "2026-07-28"
LEGACY = "2025-11-25"

# The tools DESIGN.md gives the agent role. Everything else an MCP client could reach would be a
# new power for the agent, so a tool outside this list fails the separation-of-duties test until
# someone has looked at it and added it here.
AGENT_TOOLS = frozenset(
    {
        "durable_send",
        "approval_status",
        "cancel_send",
        "list_sends",
        "reply_email",
        "check_inbox",
        "read_email",
        "get_thread",
        "wait_for_reply",
        "download_attachment",
        "list_mailboxes",
        "get_mailbox",
        "create_mailbox",
        "set_oversight_mode",
        "request_upgrade",
        "apply_upgrade",
        "get_audit_log",
        # Issue 17: neither can decide, release held mail or loosen a mode.
        "search_email",
        "manage_email",
        "create_draft",
        "list_drafts",
        "update_draft",
        "delete_draft",
    }
)


def mailgate_script() -> Path:
    """The `mailgate` console script of this environment, as a user's MCP client config names it."""
    script = Path(sysconfig.get_path("scripts")) / "mailgate"
    assert script.is_file(), f"{script} is missing; install the project with pip install -e ."
    return script


def stdio_env(stack: Serve) -> dict[str, str]:
    """What a stdio client must pass for `mailgate mcp` to attach to this stack (it inherits nothing else)."""
    return {"MAILGATE_DATA_DIR": str(stack.data_dir)}


@contextlib.asynccontextmanager
async def sdk_client(stack: Serve, transport: Transport, mode: str = "auto") -> AsyncIterator[Client]:
    """The mcp SDK's own client over one transport; mode "legacy" or "2026-07-28" picks the protocol era."""
    if transport == "stdio":
        params = StdioServerParameters(command=str(mailgate_script()), args=["mcp"], env=stdio_env(stack))
        async with Client(params, mode=mode) as client:
            yield client
        return
    headers = {"Authorization": f"Bearer {stack.token('agent')}"}
    if transport == "sse":
        async with Client(sse_client(f"{stack.url}/sse", headers=headers, timeout=30), mode=mode) as client:
            yield client
        return
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{stack.url}/mcp", http_client=http), mode=mode) as client,
    ):
        yield client


async def list_all_tools(client: Client) -> list[Tool]:
    tools: list[Tool] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


@dataclass(frozen=True)
class InspectorRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return f"mcp-inspector {' '.join(self.args)}\nrc={self.returncode}\nstdout={self.stdout}\nstderr={self.stderr}"

    @property
    def result(self) -> dict[str, Any]:
        """The JSON-RPC result `--format json` prints on stdout as {"result": ...}."""
        try:
            parsed = json.loads(self.stdout)
        except ValueError:
            raise AssertionError(f"stdout is not one JSON document:\n{self.describe()}") from None
        assert isinstance(parsed, dict) and isinstance(parsed.get("result"), dict), self.describe()
        result: dict[str, Any] = parsed["result"]
        return result

    @property
    def error_code(self) -> str | None:
        """The code of the one-line JSON error envelope the CLI prints last on stderr, if any."""
        for line in reversed(self.stderr.strip().splitlines()):
            with contextlib.suppress(ValueError):
                envelope = json.loads(line)
                if isinstance(envelope, dict) and isinstance(envelope.get("error"), dict):
                    return str(envelope["error"].get("code"))
        return None


@dataclass(frozen=True)
class Inspector:
    node: Path
    launcher: Path
    home: Path

    def run(self, target: Sequence[str], *options: str, timeout: float = 60) -> InspectorRun:
        """`mcp-inspector --cli TARGET... OPTIONS...` with JSON output and no way into interactive OAuth.

        The target goes first: the CLI's value flags (--header, -e, --tool-arg) are variadic.
        """
        args = [
            "--cli",
            *target,
            "--stored-auth-only",  # a 401 must fail at once, never wait on a browser OAuth flow
            "-q",  # keep stderr to the error envelope (no keychain noise, no server log)
            "--format",
            "json",
            *options,
        ]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # Everything the CLI would write to HOME (storage, OAuth state) stays in a temp dir.
            "HOME": str(self.home),
            "MCP_STORAGE_DIR": str(self.home / "storage"),
            "MCP_INSPECTOR_OAUTH_STATE_PATH": str(self.home / "oauth.json"),
            # There is no OS keychain here; the in-memory store keeps it from trying D-Bus.
            "MCP_INSPECTOR_SECRET_STORE": "memory",
        }
        done = subprocess.run(
            [str(self.node), str(self.launcher), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return InspectorRun(args, done.returncode, done.stdout, done.stderr)

    def target(self, stack: Serve, transport: Transport, role: str | None = "agent") -> list[str]:
        """How a developer points the Inspector at each transport of a running mailgate."""
        if transport == "stdio":
            # A stdio server inherits nothing from the Inspector's environment: pass it with -e.
            return [
                str(mailgate_script()),
                "mcp",
                *(x for k, v in stdio_env(stack).items() for x in ("-e", f"{k}={v}")),
            ]
        url = f"{stack.url}/mcp" if transport == "http" else f"{stack.url}/sse"
        headers = ["--header", f"Authorization: Bearer {stack.token(role)}"] if role else []
        return [url, "--transport", transport, *headers]


def find_inspector() -> tuple[Path, Path] | None:
    node = INSPECTOR_DIR / "node_modules" / ".bin" / "node"
    launcher = INSPECTOR_DIR / "node_modules" / ".bin" / "mcp-inspector"
    if node.exists() and launcher.exists():
        return node, launcher
    return None


def run_cli(stack: Serve, *args: str) -> Any:
    """A `mailgate ... --json` command against the stack, parsed: the human side of the checks."""
    done = stack.cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
