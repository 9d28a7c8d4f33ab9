"""The MCP Inspector CLI (a real, independent MCP client) against every transport of mailgate.

Each Inspector call starts Node and a fresh MCP session (~0.5 s over HTTP, ~1.5 s over stdio,
where `mailgate mcp` is a new Python process), so the calls below are chosen, not exhaustive
per transport: the handshake in both protocol eras, tools/list, and the send-then-status round
trip over every transport; every listed tool once over streamable HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import smtplib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from server.embedded import pid_alive
from tests.support.interop import (
    LEGACY,
    MODERN,
    TRANSPORTS,
    Inspector,
    InspectorRun,
    Transport,
    mailgate_script,
    sdk_client,
)
from tests.support.ports import free_port
from tests.support.serve import Serve
from tests.support.wait import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

MAILBOX = "agent@mailgate.local"  # the default mailbox every fresh stack creates
ATTACHMENT = ("note.txt", b"interop attachment\n")


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


def refusal(run: InspectorRun) -> str:
    """The text of a tool error: exit code 5 from the CLI, isError and the reason on stdout."""
    assert run.returncode == 5 and run.error_code == "tool_is_error", run.describe()
    assert run.result["isError"] is True
    return str(run.result["content"][0]["text"])


# --- per-tool recipes: arguments, and what a good answer looks like -------------------------


@dataclass
class Flow:
    """State carried from one tool call to the next: durable_send's send feeds the others."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    send_id: str = ""
    seeded: bool = False  # an inbound email tagged with `tag` waits in MAILBOX's inbox
    email_id: str = ""
    thread_id: str = ""
    draft_id: str = ""

    @property
    def own_mailbox(self) -> str:
        return f"interop-{self.tag}@mailgate.local"


@dataclass(frozen=True)
class Recipe:
    args: Callable[[Flow], dict[str, Any]]
    check: Callable[[Flow, dict[str, Any]], None]
    # The right answer is a tool error (a made-up upgrade code); check then gets {"text": reason}.
    refused: bool = False

    def verify(self, flow: Flow, run: InspectorRun) -> None:
        self.check(flow, {"text": refusal(run)} if self.refused else structured(run))


def _sent(flow: Flow, out: dict[str, Any]) -> None:
    assert out["status"] == "pending_approval"  # gated_send: a human decides
    assert out["mailbox"] == MAILBOX and out["oversight_mode"] == "gated_send"
    assert out["send_id"].startswith("send-") and out["message_id"].startswith("<")
    flow.send_id = out["send_id"]


def _status(flow: Flow, out: dict[str, Any]) -> None:
    assert out["send_id"] == flow.send_id
    assert out["status"] == "pending_approval"
    assert "approval_status" in out["next_step"]


def _inbox(flow: Flow, out: dict[str, Any]) -> None:
    assert isinstance(out["emails"], list)
    if flow.seeded:
        [email] = [e for e in out["emails"] if flow.tag in e["subject"]]
        assert email["has_attachments"]
        flow.email_id, flow.thread_id = email["email_id"], email["thread_id"]


def _draft(flow: Flow, out: dict[str, Any]) -> None:
    assert out["subject"].startswith("Re: ") and out["in_reply_to"], out
    flow.draft_id = out["draft_id"]


def _read(flow: Flow, out: dict[str, Any]) -> None:
    assert out["email_id"] == flow.email_id and flow.tag in out["subject"]
    assert out["untrusted"] is True  # written by an outsider
    assert [a["filename"] for a in out["attachments"]] == [ATTACHMENT[0]]


def _attachment(flow: Flow, out: dict[str, Any]) -> None:
    assert (out["filename"], out["size"]) == (ATTACHMENT[0], len(ATTACHMENT[1]))


def _reply(flow: Flow, out: dict[str, Any]) -> None:
    assert out["status"] == "pending_approval" and out["send_id"] != flow.send_id


def _cancelled(flow: Flow, out: dict[str, Any]) -> None:
    assert out["send_id"] == flow.send_id and out["status"] == "cancelled"


def _check(condition: Callable[[Flow, dict[str, Any]], bool]) -> Callable[[Flow, dict[str, Any]], None]:
    def check(flow: Flow, out: dict[str, Any]) -> None:
        assert condition(flow, out), out

    return check


# A tool that tools/list returns but this table lacks fails test_every_listed_tool_answers:
# "a developer can use every tool from the Inspector" holds only for tools someone has called.
RECIPES: dict[str, Recipe] = {
    "durable_send": Recipe(
        lambda f: {
            "mailbox": MAILBOX,
            "to": ["Bob Example <bob@example.com>"],
            "subject": f"Interop {f.tag}",
            "body": "Sent through the MCP Inspector.",
            "idempotency_key": f"interop-{f.tag}",
        },
        _sent,
    ),
    "approval_status": Recipe(lambda f: {"send_id": f.send_id}, _status),
    "list_sends": Recipe(
        lambda f: {"mailbox": MAILBOX, "limit": 5, "response_format": "detailed"},
        _check(lambda f, o: bool(o["sends"]) and all(s["mailbox"] == MAILBOX for s in o["sends"])),
    ),
    "list_mailboxes": Recipe(lambda f: {}, _check(lambda f, o: MAILBOX in {m["address"] for m in o["mailboxes"]})),
    "get_mailbox": Recipe(
        lambda f: {"mailbox": MAILBOX},
        _check(lambda f, o: (o["address"], o["mode"]) == (MAILBOX, "gated_send") and bool(o["meaning"])),
    ),
    "create_mailbox": Recipe(
        lambda f: {"address": f.own_mailbox},
        _check(lambda f, o: (o["address"], o["mode"]) == (f.own_mailbox, "gated_send")),
    ),
    "cancel_send": Recipe(lambda f: {"send_id": f.send_id}, _cancelled),
    # Issue 3: the agent's side of oversight, on the mailbox create_mailbox made.
    "set_oversight_mode": Recipe(
        lambda f: {"mailbox": f.own_mailbox, "mode": "read_only", "reason": "interop test"},
        _check(lambda f, o: o["mode"] == "read_only"),
    ),
    "request_upgrade": Recipe(
        lambda f: {"mailbox": f.own_mailbox, "mode": "autonomous", "reason": "interop test"},
        _check(lambda f, o: o["mode"] == "autonomous" and bool(o["request_id"])),
    ),
    "apply_upgrade": Recipe(
        lambda f: {"mailbox": f.own_mailbox, "code": "000000"},
        _check(lambda f, o: "code" in o["text"]),
        refused=True,
    ),
    "get_audit_log": Recipe(lambda f: {"mailbox": f.own_mailbox, "limit": 5}, _check(lambda f, o: bool(o["events"]))),
    # Issue 4: the read side, on the email seed_inbound delivered.
    "check_inbox": Recipe(lambda f: {"mailbox": MAILBOX, "query": f.tag, "limit": 5}, _inbox),
    "read_email": Recipe(lambda f: {"mailbox": MAILBOX, "email_id": f.email_id}, _read),
    "create_draft": Recipe(
        lambda f: {"mailbox": MAILBOX, "subject": "", "body": "Draft reply.", "reply_to_email_id": f.email_id},
        _draft,
    ),
    "list_drafts": Recipe(
        lambda f: {"mailbox": MAILBOX}, _check(lambda f, o: f.draft_id in {d["draft_id"] for d in o["drafts"]})
    ),
    "update_draft": Recipe(
        lambda f: {"mailbox": MAILBOX, "draft_id": f.draft_id, "body": "Changed."},
        _check(lambda f, o: o["body"].strip() == "Changed."),
    ),
    "delete_draft": Recipe(
        lambda f: {"mailbox": MAILBOX, "draft_id": f.draft_id}, _check(lambda f, o: o["deleted"] is True)
    ),
    "manage_email": Recipe(
        lambda f: {"mailbox": MAILBOX, "email_ids": [f.email_id], "action": "label", "label": "interop"},
        _check(lambda f, o: [(r["email_id"], r["ok"]) for r in o["results"]] == [(f.email_id, True)]),
    ),
    # Issue 17: search with the query syntax finds the seeded email (it has an attachment).
    "search_email": Recipe(
        lambda f: {"mailbox": MAILBOX, "query": f"{f.tag} has:attachment from:carol", "limit": 5},
        _check(lambda f, o: f.email_id in {e["email_id"] for e in o["emails"]}),
    ),
    "get_thread": Recipe(
        lambda f: {"mailbox": MAILBOX, "thread_id": f.thread_id},
        _check(lambda f, o: o["thread_id"] == f.thread_id and f.email_id in {m["email_id"] for m in o["messages"]}),
    ),
    "download_attachment": Recipe(
        lambda f: {"mailbox": MAILBOX, "email_id": f.email_id, "filename": ATTACHMENT[0]}, _attachment
    ),
    "reply_email": Recipe(
        lambda f: {"mailbox": MAILBOX, "email_id": f.email_id, "body": "Thanks!", "idempotency_key": f"re-{f.tag}"},
        _reply,
    ),
    "wait_for_reply": Recipe(
        lambda f: {"send_id": f.send_id, "timeout_minutes": 0.01},
        _check(lambda f, o: (o["send_id"], o["status"]) == (f.send_id, "timeout")),
    ),
}
# Calls that feed later ones come first (the send, the mailbox, the inbound email's ids);
# cancel_send ends the send the others looked at.
FIRST = [
    "durable_send",
    "create_mailbox",
    "set_oversight_mode",
    "request_upgrade",
    "check_inbox",
    "read_email",
    "get_thread",
    "download_attachment",
    "reply_email",
    "create_draft",
    "list_drafts",
    "update_draft",
]
LAST = ["delete_draft", "cancel_send"]

# The round trip the issue asks of every transport (check_inbox joins once the server lists it).
EVERY_TRANSPORT = ("durable_send", "approval_status", "check_inbox")


def ordered(names: list[str]) -> list[str]:
    return (
        [n for n in FIRST if n in names]
        + [n for n in names if n not in FIRST and n not in LAST]
        + [n for n in LAST if n in names]
    )


async def seed_inbound(stack: Serve, flow: Flow) -> None:
    """Mail from outside, with an attachment, into the sandbox's SMTP listener; wait until
    check_inbox shows it (through the SDK client, which is cheaper to poll than the Inspector)."""
    message = EmailMessage()
    message["From"] = "Carol Outside <carol@example.com>"
    message["To"] = MAILBOX
    message["Subject"] = f"Question {flow.tag}"
    message["Message-ID"] = f"<{flow.tag}@example.com>"
    message.set_content("Could you send me the report?")
    message.add_attachment(ATTACHMENT[1], maintype="text", subtype="plain", filename=ATTACHMENT[0])
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as smtp:
        smtp.send_message(message)

    async with sdk_client(stack, "http") as client:

        async def arrived() -> bool:
            page = await client.call_tool("check_inbox", {"mailbox": MAILBOX, "query": flow.tag})
            return bool(page.structured_content and page.structured_content["emails"])

        for _ in range(150):
            if await arrived():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the inbound email never showed up in check_inbox")
    flow.seeded = True


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
        assert "approv" in result["instructions"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_list_send_and_status(inspector: Inspector, stack: Serve, transport: Transport) -> None:
    names = list_names(inspector, stack, transport)
    assert set(EVERY_TRANSPORT) <= set(names)
    flow = Flow()
    for tool in EVERY_TRANSPORT:
        # The status is read over a 2026-07-28 session, the send made over a handshake-era one:
        # both eras reach the same durable state.
        era = "modern" if tool == "approval_status" else "legacy"
        recipe = RECIPES[tool]
        recipe.verify(flow, call(inspector, stack, transport, tool, recipe.args(flow), "--protocol-era", era))


async def test_every_listed_tool_answers(inspector: Inspector, stack: Serve) -> None:
    # Streamable HTTP only: the tool code behind every transport is the same MCPServer, and the
    # transports themselves are covered above; this proves each tool is usable from the Inspector.
    names = list_names(inspector, stack, "http")
    missing = sorted(set(names) - RECIPES.keys())
    assert not missing, f"add an Inspector recipe to RECIPES in {__file__} for: {', '.join(missing)}"
    assert "check_inbox" in names
    flow = Flow()
    await seed_inbound(stack, flow)
    for tool in ordered(names):
        recipe = RECIPES[tool]
        recipe.verify(flow, call(inspector, stack, "http", tool, recipe.args(flow)))


def test_refusals_reach_the_inspector_as_errors(inspector: Inspector, stack: Serve) -> None:
    # A mailgate refusal is a tool error the agent can read (rc 5 from the CLI), with what to do next.
    loose = call(
        inspector,
        stack,
        "http",
        "create_mailbox",
        {"address": f"loose-{uuid.uuid4().hex[:8]}@mailgate.local", "oversight_mode": "autonomous"},
    )
    assert "request_upgrade" in refusal(loose)

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
