"""client_approval = "link": the human at the agent's client is asked to open the dashboard, by URL only.

The MCP SDK's own client, in process, on a handshake version (2025-11-25, the request mid-call)
and on 2026-07-28 (an InputRequiredResult, then the client's retry), with and without the
elicitation capability. What the client answers decides nothing.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from mcp import Client
from mcp.types import ElicitRequestParams, ElicitRequestURLParams, ElicitResult

from server.app import Mailgate
from server.mcp_server import build_mcp
from server.settings import MailboxEntry
from tests.support.app import unique_mailbox


async def mailbox(app: Mailgate, client_approval: str) -> str:
    box = unique_mailbox("linked")
    entry = MailboxEntry(address=box, approvers=["alice@example.com"], client_approval=client_approval)
    await app.mailboxes.ensure(entry, created_by="tests")
    return box


async def send(client: Client, box: str, subject: str) -> dict[str, Any]:
    answer = await client.call_tool(
        "durable_send", {"mailbox": box, "to": ["bob@example.com"], "subject": subject, "body": "b"}
    )
    assert not answer.is_error, answer.content
    content: dict[str, Any] | None = answer.structured_content
    assert content is not None
    return content | {"_text": json.dumps([c.model_dump() for c in answer.content])}


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_capable_client_is_asked_to_open_the_dashboard_and_its_answer_decides_nothing(
    app: Mailgate, mode: str
) -> None:
    box = await mailbox(app, "link")
    asked: list[ElicitRequestParams] = []

    async def accept_everything(_context: object, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params)  # an agent's client that says yes to anything
        return ElicitResult(action="accept", content={"approve": True})

    async with Client(build_mcp(app), mode=mode, elicitation_callback=accept_everything) as client:  # type: ignore[arg-type]
        sent = await send(client, box, f"Asked on {mode}")
    [params] = asked
    assert isinstance(params, ElicitRequestURLParams)  # a link to open, never a form to fill
    url = urlsplit(params.url)
    assert params.url == f"{app.settings.http_url}/sends/{sent['send_id']}"
    assert not url.query and not url.fragment  # no credential rides the link
    assert sent["status"] == "pending_approval"
    state = await app.sends.status(sent["send_id"])
    assert state.status == "pending_approval" and state.decision is None
    assert "/links/" not in sent["_text"] and "/links/" not in params.message


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_without_the_capability_or_the_opt_in_the_answer_is_todays(app: Mailgate, mode: str) -> None:
    linked, plain = await mailbox(app, "link"), await mailbox(app, "off")
    asked: list[ElicitRequestParams] = []

    async def record(_context: object, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params)
        return ElicitResult(action="decline")

    async with Client(build_mcp(app), mode=mode) as client:
        assert (await send(client, linked, "no capability"))["status"] == "pending_approval"
    async with Client(build_mcp(app), mode=mode, elicitation_callback=record) as client:  # type: ignore[arg-type]
        assert (await send(client, plain, "not opted in"))["status"] == "pending_approval"
    assert asked == []


async def test_a_send_reads_mailgates_record_of_its_mailbox_once(
    app: Mailgate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record is one query (a round trip with PostgreSQL) on the agent's call: the send's check
    reads it; whether to offer the dashboard link reuses that read (issue 20)."""
    box = await mailbox(app, "link")
    ledger = app.mailboxes._ledger
    reads: list[str] = []
    recorded = ledger.mailbox_config

    def counting(address: str) -> Any:
        reads.append(address)
        return recorded(address)

    monkeypatch.setattr(ledger, "mailbox_config", counting)
    async with Client(build_mcp(app), mode="legacy") as client:
        sent = await send(client, box, "read once")
    assert sent["status"] == "pending_approval"
    assert reads == [box]
