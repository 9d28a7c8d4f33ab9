"""The MCP Inspector CLI (a real, independent MCP client) against every transport of mailgate.

Each Inspector call starts Node and a fresh MCP session (~0.5 s over HTTP, ~1.5 s over stdio,
where `mailgate mcp` is a new Python process), so the calls below are chosen, not exhaustive
per transport: the handshake in both protocol eras, tools/list, and the send-then-status round
trip over every transport; every listed tool once over streamable HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from server.embedded import pid_alive
from tests.e2e.conftest import Serve, eventually, free_port
from tests.interop.conftest import LEGACY, MODERN, TRANSPORTS, Inspector, InspectorRun, Transport, mailgate_script

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

MAILBOX = "agent@mailgate.local"  # the default mailbox every fresh stack creates


def call(
    inspector: Inspector, stack: Serve, transport: Transport, tool: str, args: dict[str, Any], *extra: str
) -> InspectorRun:
    # --tool-args-json passes the arguments verbatim; --tool-arg would JSON-parse each value
    # (a numeric-looking subject would arrive as a number).
    return inspector.run(
        inspector.target(stack, transport),
        "--method",
        "tools/call",
        "--tool-name",
        tool,
        "--tool-args-json",
        json.dumps(args),
        *extra,
    )


def structured(run: InspectorRun) -> dict[str, Any]:
    assert run.returncode == 0, run.describe()
    result = run.result
    assert result.get("isError") is False, run.describe()
    content = result.get("structuredContent")
    assert isinstance(content, dict), run.describe()
    # Every tool answers with a short text for the model beside the structured content.
    assert result["content"] and result["content"][0]["type"] == "text" and result["content"][0]["text"]
    return content


# --- per-tool recipes: arguments, and what a good answer looks like -------------------------


@dataclass
class Flow:
    """State carried from one tool call to the next: durable_send's send feeds the others."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    send_id: str = ""


def _send_args(flow: Flow) -> dict[str, Any]:
    return {
        "mailbox": MAILBOX,
        "to": ["Bob Example <bob@example.com>"],
        "subject": f"Interop {flow.tag}",
        "body": "Sent through the MCP Inspector.",
        "idempotency_key": f"interop-{flow.tag}",
    }


def _sent(flow: Flow, out: dict[str, Any]) -> None:
    assert out["status"] == "pending_approval"  # gated_send: a human decides
    assert out["mailbox"] == MAILBOX and out["oversight_mode"] == "gated_send"
    assert out["send_id"].startswith("send-") and out["message_id"].startswith("<")
    flow.send_id = out["send_id"]


def _status(flow: Flow, out: dict[str, Any]) -> None:
    assert out["send_id"] == flow.send_id
    assert out["status"] == "pending_approval"
    assert "approval_status" in out["next_step"]


def _sends(flow: Flow, out: dict[str, Any]) -> None:
    assert isinstance(out["sends"], list)
    assert all(s["mailbox"] == MAILBOX for s in out["sends"])


def _mailboxes(flow: Flow, out: dict[str, Any]) -> None:
    assert MAILBOX in {m["address"] for m in out["mailboxes"]}


def _mailbox(flow: Flow, out: dict[str, Any]) -> None:
    assert out["address"] == MAILBOX and out["mode"] == "gated_send" and out["meaning"]


def _created(flow: Flow, out: dict[str, Any]) -> None:
    assert out["address"] == f"interop-{flow.tag}@mailgate.local"
    assert out["mode"] == "gated_send"


def _cancelled(flow: Flow, out: dict[str, Any]) -> None:
    assert out["send_id"] == flow.send_id and out["status"] == "cancelled"


Recipe = tuple[Callable[[Flow], dict[str, Any]], Callable[[Flow, dict[str, Any]], None]]

# A tool that tools/list returns but this table lacks fails test_every_listed_tool_answers:
# "a developer can use every tool from the Inspector" holds only for tools someone has called.
RECIPES: dict[str, Recipe] = {
    "durable_send": (_send_args, _sent),
    "approval_status": (lambda f: {"send_id": f.send_id}, _status),
    "list_sends": (lambda f: {"mailbox": MAILBOX, "limit": 5}, _sends),
    "list_mailboxes": (lambda f: {}, _mailboxes),
    "get_mailbox": (lambda f: {"mailbox": MAILBOX}, _mailbox),
    "create_mailbox": (lambda f: {"address": f"interop-{f.tag}@mailgate.local"}, _created),
    "cancel_send": (lambda f: {"send_id": f.send_id}, _cancelled),
}
FIRST, LAST = "durable_send", "cancel_send"  # the send must exist before the others, and be cancelled last

# The round trip the issue asks of every transport (check_inbox joins once the server lists it).
EVERY_TRANSPORT = ("durable_send", "approval_status", "check_inbox")


def list_names(inspector: Inspector, stack: Serve, transport: Transport, *extra: str) -> list[str]:
    run = inspector.run(inspector.target(stack, transport), "--method", "tools/list", *extra)
    assert run.returncode == 0, run.describe()
    tools = run.result["tools"]
    for tool in tools:
        assert tool["inputSchema"]["type"] == "object", tool["name"]
        assert tool.get("description"), f"{tool['name']} has no description"
    return [t["name"] for t in tools]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_handshake_in_both_protocol_eras(inspector: Inspector, stack: Serve, transport: Transport) -> None:
    for era, version in (("legacy", LEGACY), ("modern", MODERN)):
        run = inspector.run(inspector.target(stack, transport), "--protocol-era", era, "--method", "initialize")
        assert run.returncode == 0, run.describe()
        result = run.result
        assert result["protocolVersion"] == version, run.describe()
        assert result["serverInfo"]["name"] == "mailgate"
        assert "tools" in result["capabilities"]
        assert "approval" in result["instructions"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_list_send_and_status(inspector: Inspector, stack: Serve, transport: Transport) -> None:
    names = list_names(inspector, stack, transport)
    assert {"durable_send", "approval_status"} <= set(names)
    flow = Flow()
    for tool in (t for t in EVERY_TRANSPORT if t in names):
        # The status is read over a 2026-07-28 session, the send made over a handshake-era one:
        # both eras reach the same durable state.
        era = "modern" if tool == "approval_status" else "legacy"
        make_args, check = RECIPES[tool]
        check(flow, structured(call(inspector, stack, transport, tool, make_args(flow), "--protocol-era", era)))


def test_every_listed_tool_answers(inspector: Inspector, stack: Serve) -> None:
    # Streamable HTTP only: the tool code behind every transport is the same MCPServer, and the
    # transports themselves are covered above; this proves each tool is usable from the Inspector.
    names = list_names(inspector, stack, "http")
    missing = sorted(set(names) - RECIPES.keys())
    assert not missing, f"add an Inspector recipe to RECIPES in {__file__} for: {', '.join(missing)}"
    order = [FIRST, *(n for n in names if n not in (FIRST, LAST)), LAST]
    flow = Flow()
    for tool in order:
        make_args, check = RECIPES[tool]
        check(flow, structured(call(inspector, stack, "http", tool, make_args(flow))))


def test_refusals_reach_the_inspector_as_errors(inspector: Inspector, stack: Serve) -> None:
    # A mailgate refusal is a tool error the agent can read (rc 5 from the CLI), with what to do next.
    loose = call(
        inspector,
        stack,
        "http",
        "create_mailbox",
        {"address": f"loose-{uuid.uuid4().hex[:8]}@mailgate.local", "oversight_mode": "autonomous"},
    )
    assert loose.returncode == 5, loose.describe()
    assert loose.error_code == "tool_is_error"
    assert loose.result["isError"] is True
    assert "request_upgrade" in loose.result["content"][0]["text"]

    unknown = call(inspector, stack, "sse", "approve_send", {"send_id": "send-aaaaaaaaaaaaaaaaaaaa"})
    assert unknown.returncode == 5 and unknown.error_code == "tool_not_found", unknown.describe()


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_without_the_agent_token_the_inspector_gets_nothing(
    inspector: Inspector, stack: Serve, transport: Transport
) -> None:
    for role in (None, "admin"):
        run = inspector.run(inspector.target(stack, transport, role=role), "--method", "tools/list")
        assert run.returncode == 3, run.describe()  # 3: auth_required
        assert run.error_code == "auth_required"
        assert run.stdout == ""


async def test_stdio_starts_its_own_stack_from_env_alone(inspector: Inspector, tmp_path: Path) -> None:
    """`mailgate mcp` with nothing running: the Inspector passes a data dir and ports with -e, as a
    user would in a client config, and the whole stack comes up and goes down with the session."""
    data = tmp_path / "data"
    env = {
        "MAILGATE_DATA_DIR": str(data),
        "MAILGATE_PORT": str(free_port()),
        "MAILGATE_SMTP_PORT": str(free_port()),
        "MAILGATE_TEMPORAL_PORT": str(free_port()),
        "MAILGATE_TEMPORAL_UI_PORT": str(free_port()),
    }
    target = [str(mailgate_script()), "mcp", *(x for k, v in env.items() for x in ("-e", f"{k}={v}"))]
    try:
        run = inspector.run(target, "--method", "tools/list")
        assert run.returncode == 0, run.describe() + (data / "temporal.log").read_text(errors="replace")[-2000:]
        assert {"durable_send", "approval_status"} <= {t["name"] for t in run.result["tools"]}
        temporal = int(json.loads((data / "temporal.json").read_text())["pid"])
        # The session ended, so `mailgate mcp` stops the dev server it started.
        await eventually(lambda: not pid_alive(temporal), timeout=30)
    finally:
        try:
            leftover = int(json.loads((data / "temporal.json").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            leftover = 0
        if leftover and pid_alive(leftover):
            os.kill(leftover, signal.SIGKILL)
