"""The MCP tools through the SDK's in-memory client, against a real Temporal server."""

from __future__ import annotations

from server.app import Mailgate
from tests.support.mcp import connected
from tests.support.wait import visible, wait_for_status
from workflows.models import Decision

AGENT_TOOLS = {
    "durable_send",
    "approval_status",
    "cancel_send",
    "list_sends",
    "list_mailboxes",
    "get_mailbox",
    "create_mailbox",
}


async def test_tools_are_listed_with_annotations_and_schemas(app: Mailgate) -> None:
    async with connected(app) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) >= AGENT_TOOLS
        send = tools["durable_send"]
        assert send.annotations is not None and send.annotations.open_world_hint is True
        assert send.annotations.read_only_hint is False
        assert tools["approval_status"].annotations.read_only_hint is True  # type: ignore[union-attr]
        assert tools["cancel_send"].annotations.destructive_hint is True  # type: ignore[union-attr]
        assert "to" in send.input_schema["properties"] and send.input_schema["properties"]["to"]["description"]
        assert send.output_schema is not None and "send_id" in send.output_schema["properties"]


async def test_no_tool_can_approve_reject_release_or_loosen(app: Mailgate) -> None:
    async with connected(app) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        forbidden = {
            "approve",
            "reject",
            "decide",
            "approve_send",
            "reject_send",
            "release",
            "release_inbound",
        }
        assert not names & forbidden
        for tool in (await client.list_tools()).tools:
            assert "approver" not in tool.input_schema.get("properties", {})


async def test_durable_send_returns_the_contract_fields_and_waits_for_a_human(app: Mailgate) -> None:
    async with connected(app) as client:
        result = await client.call_tool(
            "durable_send",
            {
                "mailbox": app.settings.default_mailbox,
                "to": ["bob@example.com"],
                "subject": "Hi",
                "body": "Hello",
            },
        )
        assert not result.is_error
        data = result.structured_content
        assert data is not None
        assert {"send_id", "status", "mailbox", "oversight_mode", "message_id"} <= set(data)
        assert data["status"] == "pending_approval"
        assert data["oversight_mode"] == "gated_send"
        assert "approval_status" in result.content[0].text  # type: ignore[union-attr]

        await app.sends.decide(data["send_id"], Decision(decision="approve", approver="alice"))
        await wait_for_status(app, data["send_id"], ["sent"])
        status = await client.call_tool("approval_status", {"send_id": data["send_id"]})
        assert status.structured_content is not None
        assert status.structured_content["status"] == "sent"
        assert "approved by alice" in status.content[0].text  # type: ignore[union-attr]


async def test_refusals_are_tool_errors_that_say_what_to_do(app: Mailgate) -> None:
    async with connected(app) as client:
        result = await client.call_tool(
            "durable_send",
            {"mailbox": "nobody@mailgate.local", "to": ["b@example.com"], "subject": "s", "body": "b"},
        )
        assert result.is_error
        assert "list_mailboxes" in result.content[0].text  # type: ignore[union-attr]

        await app.mailboxes.set_mode(app.settings.default_mailbox, "read_only", actor="ops", role="human")
        result = await client.call_tool(
            "durable_send",
            {"mailbox": app.settings.default_mailbox, "to": ["b@example.com"], "subject": "s", "body": "b"},
        )
        assert result.is_error
        assert "read_only" in result.content[0].text and "request_upgrade" in result.content[0].text  # type: ignore[union-attr]


async def test_schema_violations_are_tool_errors(app: Mailgate) -> None:
    async with connected(app) as client:
        result = await client.call_tool("durable_send", {"mailbox": app.settings.default_mailbox, "to": "bob"})
        assert result.is_error
        result = await client.call_tool("list_sends", {"limit": 1000})
        assert result.is_error


async def test_list_sends_paginates_with_a_cursor(app: Mailgate) -> None:
    async with connected(app) as client:
        for i in range(3):
            await app.sends.submit(
                mailbox=app.settings.default_mailbox, to=["b@example.com"], subject=f"s{i}", body="b"
            )
        await visible(app, 3)
        first = await client.call_tool("list_sends", {"mailbox": app.settings.default_mailbox, "limit": 2})
        assert first.structured_content is not None
        assert len(first.structured_content["sends"]) == 2
        cursor = first.structured_content["next_cursor"]
        second = await client.call_tool(
            "list_sends", {"mailbox": app.settings.default_mailbox, "limit": 2, "cursor": cursor}
        )
        assert second.structured_content is not None
        assert len(second.structured_content["sends"]) == 1
        seen = {s["subject"] for s in first.structured_content["sends"] + second.structured_content["sends"]}
        assert seen == {"s0", "s1", "s2"}


async def test_cancel_send_from_the_agent(app: Mailgate) -> None:
    async with connected(app) as client:
        sent = await app.sends.submit(mailbox=app.settings.default_mailbox, to=["b@example.com"], subject="s", body="b")
        result = await client.call_tool("cancel_send", {"send_id": sent.send_id})
        assert result.structured_content is not None and result.structured_content["status"] == "cancelled"


async def test_mailbox_tools(app: Mailgate) -> None:
    async with connected(app) as client:
        listed = await client.call_tool("list_mailboxes", {})
        assert listed.structured_content is not None
        assert app.settings.default_mailbox in {m["address"] for m in listed.structured_content["mailboxes"]}

        created = await client.call_tool("create_mailbox", {"address": "new-" + app.settings.default_mailbox})
        assert created.structured_content is not None and created.structured_content["mode"] == "gated_send"
        looser = await client.call_tool(
            "create_mailbox", {"address": "x-" + app.settings.default_mailbox, "oversight_mode": "autonomous"}
        )
        assert looser.is_error and "request_upgrade" in looser.content[0].text  # type: ignore[union-attr]
        again = await client.call_tool("create_mailbox", {"address": "new-" + app.settings.default_mailbox})
        assert again.is_error and "already exists" in again.content[0].text  # type: ignore[union-attr]

        got = await client.call_tool("get_mailbox", {"mailbox": app.settings.default_mailbox})
        assert got.structured_content is not None and got.structured_content["mode"] == "gated_send"
