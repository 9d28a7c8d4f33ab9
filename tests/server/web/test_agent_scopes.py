"""Agents with their own tokens over /mcp: each reaches only its mailboxes, under its own name."""

from __future__ import annotations

import uuid

import httpx2
from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from server.identities import NewAgent
from tests.support.web import Web


def _client(web: Web, token: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(f"{web.url}/mcp", http_client=http))


def _text(result: CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def _setup(web: Web) -> tuple[str, str, NewAgent, NewAgent]:
    tag = uuid.uuid4().hex[:8]
    ours, theirs = f"support-{tag}@mailgate.local", f"finance-{tag}@mailgate.local"
    for box in (ours, theirs):
        await web.app.mailboxes.create(box, created_by="test")
    alpha = web.app.identities.add_agent(f"support-{tag}", mailboxes=[ours])
    beta = web.app.identities.add_agent(f"reader-{tag}", mailboxes=[theirs], read_only=True)
    return ours, theirs, alpha, beta


async def test_an_agent_reaches_only_its_mailboxes_under_its_own_name(web: Web) -> None:
    ours, theirs, alpha, _ = await _setup(web)
    async with _client(web, alpha.token) as client:
        listed = await client.call_tool("list_mailboxes", {})
        assert listed.structured_content is not None
        assert [m["address"] for m in listed.structured_content["mailboxes"]] == [ours]

        send = {"to": ["b@example.com"], "subject": "Hi", "body": "Hello"}
        refused = await client.call_tool("durable_send", {"mailbox": theirs, **send})
        assert refused.is_error and "not found or not yours" in _text(refused)
        assert "list_mailboxes" in _text(refused)
        # Omitting the mailbox means the default one, which is not this agent's either.
        assert (await client.call_tool("check_inbox", {})).is_error

        sent = await client.call_tool("durable_send", {"mailbox": ours, **send})
        assert not sent.is_error, _text(sent)
        assert sent.structured_content is not None
        state = await web.app.sends.status(sent.structured_content["send_id"])
        assert state.requester == alpha.name

        # Someone else's send is as unknown as someone else's mailbox.
        other = await web.app.sends.submit(mailbox=theirs, to=["b@example.com"], subject="x", body="y")
        peek = await client.call_tool("approval_status", {"send_id": other.send_id})
        assert peek.is_error and "not found or not yours" in _text(peek)
        sends = await client.call_tool("list_sends", {"response_format": "detailed"})
        assert sends.structured_content is not None
        assert {s["mailbox"] for s in sends.structured_content["sends"]} == {ours}

        # The audit log: its own mailbox and sends, by name; not everyone's, not someone else's.
        audit = await client.call_tool("get_audit_log", {"mailbox": ours})
        assert audit.structured_content is not None
        assert alpha.name in {e["actor"] for e in audit.structured_content["events"]}
        assert (await client.call_tool("get_audit_log", {})).is_error
        assert (await client.call_tool("get_audit_log", {"mailbox": theirs})).is_error
        assert (await client.call_tool("get_audit_log", {"send_id": other.send_id})).is_error

        created = f"new-{uuid.uuid4().hex[:8]}@mailgate.local"
        made = await client.call_tool("create_mailbox", {"address": created})
        assert not made.is_error, _text(made)
        listed = await client.call_tool("list_mailboxes", {})
        assert listed.structured_content is not None
        assert {m["address"] for m in listed.structured_content["mailboxes"]} == {ours, created}


async def test_a_read_only_agent_gets_no_write_tool(web: Web) -> None:
    _, theirs, _, beta = await _setup(web)
    headers = {"Authorization": f"Bearer {beta.token}"}
    async with sse_client(f"{web.url}/sse", headers=headers) as streams, ClientSession(*streams) as session:
        await session.initialize()
        names = {t.name for t in (await session.list_tools()).tools}
        assert {"list_mailboxes", "check_inbox", "approval_status"} <= names
        assert not names & {"durable_send", "reply_email", "cancel_send", "create_mailbox", "set_oversight_mode"}
        refused = await session.call_tool(
            "durable_send", {"mailbox": theirs, "to": ["b@example.com"], "subject": "s", "body": "b"}
        )
        assert refused.is_error and "read-only" in _text(refused)
        listed = await session.call_tool("list_mailboxes", {})
        assert listed.structured_content is not None
        assert [m["address"] for m in listed.structured_content["mailboxes"]] == [theirs]


async def test_agent_tokens_stay_out_of_the_api_and_person_tokens_out_of_mcp(web: Web) -> None:
    _, _, alpha, _ = await _setup(web)
    person = web.app.identities.add_person(f"p-{uuid.uuid4().hex[:8]}@example.com", admin=True)
    api = await web.anonymous.get("/api/approvals", headers={"Authorization": f"Bearer {alpha.token}"})
    assert api.status_code == 403
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    mcp = await web.anonymous.post("/mcp", json=body, headers={"Authorization": f"Bearer {person.api_token}"})
    assert mcp.status_code == 401 and "agent token" in mcp.json()["error_description"]
    # A removed agent's token stops working at once.
    web.app.identities.remove_agent(alpha.name)
    gone = await web.anonymous.post("/mcp", json=body, headers={"Authorization": f"Bearer {alpha.token}"})
    assert gone.status_code == 401
