"""request_upgrade, the agent's tool, cannot grow a mailbox's state without end (issue 24 item 1)."""

from __future__ import annotations

from server.app import Mailgate
from tests.support.mcp import connected
from workflows.mailbox import UPGRADES_PENDING


async def test_request_upgrade_past_the_cap_is_a_tool_error_that_says_why(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    async with connected(app) as client:
        for i in range(UPGRADES_PENDING):
            asked = await client.call_tool(
                "request_upgrade", {"mailbox": mailbox, "mode": "autonomous", "reason": f"ask {i}"}
            )
            assert not asked.is_error
        refused = await client.call_tool(
            "request_upgrade", {"mailbox": mailbox, "mode": "autonomous", "reason": "more"}
        )
        assert refused.is_error
        message = refused.content[0].text  # type: ignore[union-attr]
        assert f"already has {UPGRADES_PENDING} pending upgrade requests" in message
        assert "expires at" in message
    # Nothing was added by the refused call: the humans see the requests that were accepted.
    assert len(await app.mailboxes.upgrades(mailbox)) == UPGRADES_PENDING
