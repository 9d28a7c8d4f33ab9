"""mailgate's refusals reach the agent the same way from resources and prompts as from tools: the
reason and the next step, as an expected error, never a generic crash with a server traceback."""

from __future__ import annotations

import logging

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from server.app import Mailgate
from server.mcp_server import build_mcp


async def test_a_refused_resource_read_says_why_and_what_to_do(app: Mailgate, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with Client(build_mcp(app)) as client:
        with pytest.raises(MCPError) as refused:
            await client.read_resource("mailgate://mailboxes/nobody@mailgate.local")
    message = refused.value.error.message
    assert "mailbox nobody@mailgate.local does not exist" in message
    assert "list_mailboxes" in message  # the next step, as a tool's refusal names it
    assert not [r for r in caplog.records if r.exc_info], "a refusal is no crash: no traceback in the log"


@pytest.mark.parametrize(
    ("prompt", "arguments"),
    [
        ("triage_inbox", {"mailbox": "nobody@mailgate.local"}),
        ("draft_reply", {"mailbox": "nobody@mailgate.local", "email_id": "x"}),
    ],
)
async def test_a_refused_prompt_says_why_and_what_to_do(
    app: Mailgate, caplog: pytest.LogCaptureFixture, prompt: str, arguments: dict[str, str]
) -> None:
    caplog.set_level(logging.INFO)
    async with Client(build_mcp(app)) as client:
        with pytest.raises(MCPError) as refused:
            await client.get_prompt(prompt, arguments)
    message = refused.value.error.message
    assert "mailbox nobody@mailgate.local does not exist" in message
    assert "list_mailboxes" in message
    assert not [r for r in caplog.records if r.exc_info], "a refusal is no crash: no traceback in the log"
