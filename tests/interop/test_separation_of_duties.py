"""No MCP tool, on any transport, lets the agent approve, reject, release or loosen.

DESIGN.md: approving, rejecting, releasing held inbound mail and loosening a mailbox are human
acts (dashboard, CLI, signed links and webhooks). The agent's token reaches only the MCP tools,
so the tool surface itself must offer none of them, on every transport, and the tools that
touch modes must refuse to loosen.
"""

from __future__ import annotations

import uuid
from typing import Any, get_args

import pytest
from mcp import Client
from mcp.types import Tool

from tests.support.interop import AGENT_TOOLS, TRANSPORTS, list_all_tools, run_cli, sdk_client
from tests.support.serve import Serve
from workflows.models import OversightMode, strictness

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

MODES: tuple[str, ...] = get_args(OversightMode)

# Words that name a human decision. Tool names are split on "_", so approval_status is fine
# and approve_send is not.
DECISION_WORDS = {"approve", "reject", "release", "decide", "decision", "loosen", "ack", "acknowledge", "discard"}
# Inputs that would let an agent act as, or appoint, a decider, or widen a mailbox's policy.
FORBIDDEN_INPUTS = {
    "approve",
    "approved",
    "approver",
    "approvers",
    "reject",
    "rejected",
    "decision",
    "decided_by",
    "reviewer",
    "reviewers",
    "acked_by",
    "release",
    "role",
    "actor",
    "admin",
    "admin_token",
    "allow",
    "deny",
    "rate_per_hour",
    "rate_per_day",
}
# Enum values that would turn a parameter into a decision (statuses like "rejected" are fine).
DECISION_VALUES = {"approve", "reject", "release"}


def walk(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every (path, sub-schema) of a JSON schema: properties, items, anyOf/oneOf/allOf and $defs."""
    found: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(schema, dict):
        return found
    found.append((path, schema))
    for name, sub in (schema.get("properties") or {}).items():
        found += walk(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        found += walk(schema.get(key), f"{path}[]")
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key) or []):
            found += walk(sub, f"{path}|{i}")
    for name, sub in (schema.get("$defs") or {}).items():
        found += walk(sub, f"$defs.{name}")
    return found


def separation_problems(tools: list[Tool]) -> list[str]:
    problems = []
    for tool in tools:
        if tool.name not in AGENT_TOOLS:
            problems.append(
                f"{tool.name}: not an agent tool in DESIGN.md; check it cannot decide or loosen, then add it "
                "to AGENT_TOOLS in tests/interop/conftest.py"
            )
        if words := DECISION_WORDS & set(tool.name.split("_")):
            problems.append(f"{tool.name}: the name says it decides ({', '.join(sorted(words))})")
        for path, sub in walk(tool.input_schema):
            for name in sub.get("properties") or {}:
                if name.lower() in FORBIDDEN_INPUTS:
                    problems.append(f"{tool.name}: input {path}.{name} lets the agent act as a decider")
            values = {str(v).lower() for v in sub.get("enum") or []} | (
                {str(sub["const"]).lower()} if "const" in sub else set()
            )
            if values & DECISION_VALUES:
                problems.append(f"{tool.name}: input {path or '(root)'} takes a decision value {sorted(values)}")
    return problems


async def test_no_tool_on_any_transport_can_approve_reject_release_or_loosen(stack: Serve) -> None:
    listings: dict[str, list[Tool]] = {}
    for transport in TRANSPORTS:
        async with sdk_client(stack, transport, "legacy") as client:
            listings[transport] = await list_all_tools(client)
    # One MCPServer behind all three transports: exactly the same tools, schemas and annotations.
    dumped = {t: [tool.model_dump(mode="json") for tool in tools] for t, tools in listings.items()}
    assert dumped["http"] == dumped["stdio"], "stdio and streamable HTTP list different tools"
    assert dumped["sse"] == dumped["stdio"], "stdio and SSE list different tools"

    tools = listings["stdio"]
    assert {"durable_send", "approval_status"} <= {t.name for t in tools}
    assert separation_problems(tools) == []


def test_the_checks_catch_a_tool_that_decides() -> None:
    # The listing check above passes today, so prove it can fail: tools that would break the rule.
    bad = [
        Tool(name="approve_send", input_schema={"type": "object", "properties": {"send_id": {"type": "string"}}}),
        Tool(
            name="decide",
            input_schema={
                "type": "object",
                "properties": {"choice": {"anyOf": [{"enum": ["approve", "reject"]}, {"type": "null"}]}},
            },
        ),
        Tool(
            name="create_mailbox",
            input_schema={
                "type": "object",
                "properties": {"opts": {"$ref": "#/$defs/Opts"}},
                "$defs": {"Opts": {"type": "object", "properties": {"approvers": {"type": "array"}}}},
            },
        ),
    ]
    problems = "\n".join(separation_problems(bad))
    assert "approve_send: not an agent tool" in problems
    assert "approve_send: the name says it decides (approve)" in problems
    assert "decide: the name says it decides" in problems
    assert "takes a decision value" in problems
    assert "create_mailbox: input $defs.Opts.approvers" in problems


def mode_parameter(tool: Tool) -> str | None:
    """The input of a tool that takes an oversight mode (a property whose choices are the modes)."""
    defs = tool.input_schema.get("$defs") or {}
    for name, prop in (tool.input_schema.get("properties") or {}).items():
        for _, sub in walk(prop):
            ref = sub.get("$ref", "")
            target = defs.get(ref.rsplit("/", 1)[-1], {}) if ref else sub
            if set(MODES) <= set(target.get("enum") or []):
                return str(name)
    return None


def fill(tool: Tool, mailbox: str, **known: Any) -> dict[str, Any]:
    """Arguments for a tool whose exact signature this test does not pin: the mailbox, given
    values, and an obviously wrong string for any other required input (e.g. an upgrade code)."""
    props = tool.input_schema.get("properties") or {}
    args: dict[str, Any] = {k: v for k, v in known.items() if k in props}
    for name in props:
        if name in ("mailbox", "address"):
            args[name] = mailbox
    for name in tool.input_schema.get("required") or []:
        args.setdefault(name, "000000-not-a-real-code")
    return args


async def mode_of(client: Client, mailbox: str) -> str:
    got = await client.call_tool("get_mailbox", {"mailbox": mailbox})
    assert not got.is_error and got.structured_content is not None, got.content
    return str(got.structured_content["mode"])


async def test_tools_that_touch_modes_only_ever_tighten(stack: Serve) -> None:
    async with sdk_client(stack, "http") as client:
        tools = {t.name: t for t in await list_all_tools(client)}
        floor = "gated_send"
        looser = [m for m in MODES if strictness(m) > strictness(floor)]  # type: ignore[arg-type]

        # create_mailbox: never looser than the floor, whatever the agent asks for.
        for mode in looser:
            address = f"loose-{uuid.uuid4().hex[:8]}@mailgate.local"
            refused = await client.call_tool("create_mailbox", {"address": address, "oversight_mode": mode})
            assert refused.is_error, f"create_mailbox made a {mode} mailbox"
            assert address not in {m["address"] for m in run_cli(stack, "mailbox", "list")}

        mailbox = f"sod-{uuid.uuid4().hex[:8]}@mailgate.local"
        created = await client.call_tool("create_mailbox", {"address": mailbox})
        assert not created.is_error, created.content
        assert await mode_of(client, mailbox) == floor

        # set_oversight_mode (issue 3), or any other tool that takes a mode: stricter is fine,
        # looser is refused, and the mailbox keeps its mode.
        setters = [t for t in tools.values() if t.name != "create_mailbox" and mode_parameter(t)]
        for tool in setters:
            param = mode_parameter(tool)
            assert param is not None
            for mode in looser:
                answer = await client.call_tool(tool.name, fill(tool, mailbox, **{param: mode}))
                assert await mode_of(client, mailbox) == floor, f"{tool.name}({param}={mode}) loosened {mailbox}"
                if tool.name == "set_oversight_mode":
                    assert answer.is_error, f"set_oversight_mode accepted {mode} without a human"

        # apply_upgrade needs the one-time code only a human receives; a guess changes nothing.
        if "apply_upgrade" in tools:
            guess = await client.call_tool("apply_upgrade", fill(tools["apply_upgrade"], mailbox))
            assert guess.is_error, "apply_upgrade accepted a made-up code"
            assert await mode_of(client, mailbox) == floor


async def test_an_agent_cannot_smuggle_a_decision_into_a_send(stack: Serve) -> None:
    async with sdk_client(stack, "sse") as client:
        sent = await client.call_tool(
            "durable_send",
            {
                "mailbox": "agent@mailgate.local",
                "to": ["dave@example.com"],
                "subject": f"Smuggle {uuid.uuid4().hex[:8]}",
                "body": "b",
                # Not in the schema; a lax server might still read them.
                "status": "sent",
                "approved": True,
                "approver": "agent",
                "oversight_mode": "autonomous",
            },
        )
    assert sent.structured_content is not None, sent.content
    assert sent.structured_content["status"] == "pending_approval"
    send_id = sent.structured_content["send_id"]
    shown = run_cli(stack, "sends", "show", send_id)
    assert shown["status"] == "pending_approval" and not shown.get("decision")
    delivered = run_cli(stack, "sandbox", "list", "--mailbox", "agent@mailgate.local")
    assert sent.structured_content["message_id"] not in {row["message_id"] for row in delivered}
