"""What a new user hits in the first hour, against a real `mailgate serve` (issue 21, items 6, 8, 9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.support.interop import list_all_tools, sdk_client
from tests.support.serve import Serve

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

DEFAULT = "agent@mailgate.local"
PYDANTIC = ("pydantic", "validation error", "For further information", "input_value", "Field required")


async def test_tools_that_take_a_mailbox_use_the_default_when_it_is_omitted(stack: Serve) -> None:
    async with sdk_client(stack, "http") as client:
        tools = await list_all_tools(client)
        with_mailbox = [t for t in tools if "mailbox" in t.input_schema.get("properties", {})]
        assert len(with_mailbox) >= 10
        assert [t.name for t in with_mailbox if "mailbox" in t.input_schema.get("required", [])] == []

        sent = await client.call_tool("durable_send", {"to": ["bob@example.com"], "subject": "Hi", "body": "No box."})
        assert not sent.is_error, sent.content
        assert sent.structured_content is not None and sent.structured_content["mailbox"] == DEFAULT
        box = await client.call_tool("get_mailbox", {})
        assert box.structured_content is not None and box.structured_content["address"] == DEFAULT
        inbox = await client.call_tool("check_inbox", {"limit": 1})
        assert not inbox.is_error, inbox.content
        # null, as strict-mode clients send for an optional field, means the default too.
        again = await client.call_tool("get_mailbox", {"mailbox": None})
        assert again.structured_content is not None and again.structured_content["address"] == DEFAULT


async def test_missing_or_wrong_arguments_get_one_line_in_mailgates_words(stack: Serve) -> None:
    async with sdk_client(stack, "http") as client:
        missing = await client.call_tool("durable_send", {"to": ["bob@example.com"], "body": "b"})
        assert missing.is_error
        text = " ".join(getattr(block, "text", "") for block in missing.content)
        assert text == (
            "durable_send: subject is required. Call durable_send again with subject "
            "(its input schema in tools/list describes every field)."
        )
        checked = 0
        for tool in await list_all_tools(client):
            for args in ({}, {name: 12345 for name in tool.input_schema.get("properties", {})}):
                result = await client.call_tool(tool.name, args)
                if not result.is_error:
                    continue
                text = " ".join(getattr(block, "text", "") for block in result.content)
                assert "\n" not in text.strip(), (tool.name, text)
                assert not any(marker in text for marker in PYDANTIC), (tool.name, text)
                checked += 1
        assert checked >= 15


async def test_each_front_door_names_its_own_next_step(stack: Serve) -> None:
    unknown_send, unknown_box = "send-aaaaaaaaaaaaaaaaaaaa", "nobody@mailgate.local"
    async with sdk_client(stack, "http") as client:
        for tool, args in (("approval_status", {"send_id": unknown_send}), ("get_mailbox", {"mailbox": unknown_box})):
            result = await client.call_tool(tool, args)
            text = " ".join(getattr(block, "text", "") for block in result.content)
            assert result.is_error and ("list_sends" in text or "list_mailboxes" in text), text
            assert "mailgate " not in text and "/api/" not in text, text

    for cli_args, command in (
        (["sends", "show", unknown_send], "`mailgate approvals list --status all`"),
        (["mailbox", "set-mode", unknown_box, "gated_all"], "`mailgate mailbox list`"),
    ):
        done = stack.cli(*cli_args)
        assert done.returncode == 1 and command in done.stderr, done.stderr
        assert "list_sends" not in done.stderr and "list_mailboxes" not in done.stderr, done.stderr

    admin = {"Authorization": f"Bearer {stack.token('admin')}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=admin, timeout=30) as http:
        send = await http.get(f"/api/sends/{unknown_send}")
        mode = await http.post(f"/api/mailboxes/{unknown_box}/mode", json={"mode": "gated_all", "actor": "alice"})
    for response, endpoint in ((send, "GET /api/approvals?status=all"), (mode, "GET /api/mailboxes")):
        assert response.status_code == 404, response.text
        error = response.json()["error"]
        assert endpoint in error and "list_" not in error and "mailgate " not in error, error


@pytest.mark.parametrize(
    "where",
    [
        ["--data-dir", "{dir}", "approvals", "list", "--json"],
        ["approvals", "--data-dir", "{dir}", "list", "--json"],
        ["approvals", "list", "--data-dir", "{dir}", "--json"],
        ["--data-dir", "/nonexistent/elsewhere", "approvals", "list", "--data-dir", "{dir}", "--json"],
    ],
)
def test_data_dir_is_taken_before_or_after_the_subcommand(stack: Serve, where: list[str]) -> None:
    args = [a.replace("{dir}", str(stack.data_dir)) for a in where]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    env["MAILGATE_DATA_DIR"] = "/nonexistent/from-the-environment"  # a flag anywhere wins over it
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)
