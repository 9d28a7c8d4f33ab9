"""Teams against a real `mailgate serve`: people and agents made with the CLI, used over HTTP and MCP."""

from __future__ import annotations

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.serve import Serve

SEND = {"to": ["b@example.com"], "subject": "Quarterly numbers", "body": "Attached."}


def agent(stack: Serve, token: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(f"{stack.url}/mcp", http_client=http))


async def test_two_agents_and_a_person_made_by_the_cli_against_mailgate_serve(serve: Serve) -> None:
    serve.start()
    support, finance = "support@mailgate.local", "finance@mailgate.local"
    for box in (support, finance):
        assert serve.cli("mailbox", "create", box).returncode == 0
    helper = serve.made("agents", "add", "helper", "--mailbox", support)
    counter = serve.made("agents", "add", "counter", "--mailbox", finance)
    fiona = serve.made("people", "add", "fiona@example.com", "--approves", finance)

    async with agent(serve, str(helper["token"])) as h, agent(serve, str(counter["token"])) as c:
        listed = await h.call_tool("list_mailboxes", {})
        assert listed.structured_content is not None
        assert [m["address"] for m in listed.structured_content["mailboxes"]] == [support]
        assert (await h.call_tool("durable_send", {"mailbox": finance, **SEND})).is_error
        sent = await c.call_tool("durable_send", {"mailbox": finance, **SEND})
        assert sent.structured_content is not None, sent.content
        send_id = sent.structured_content["send_id"]

    # The built-in agent of the quick start still reaches every mailbox.
    async with serve.mcp() as default:
        listed = await default.call_tool("list_mailboxes", {})
        assert listed.structured_content is not None
        assert {support, finance} <= {m["address"] for m in listed.structured_content["mailboxes"]}

    person = {"Authorization": f"Bearer {fiona['api_token']}"}
    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        assert (
            await http.get("/api/approvals", headers={"Authorization": f"Bearer {helper['token']}"})
        ).status_code == 403
        mcp = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=person)
        assert mcp.status_code == 401
        approved = await http.post(f"/api/approvals/{send_id}/approve", json={}, headers=person)
        assert approved.status_code == 200, approved.text
        assert approved.json()["decision"]["approver"] == "fiona@example.com"
        assert approved.json()["requester"] == "counter"
        audit = await http.get(f"/api/audit?send_id={send_id}", headers=person)
        assert audit.status_code == 200, audit.text
        actors = {e["actor"] for e in audit.json()["events"]}
        assert {"counter", "fiona@example.com"} <= actors

    # Removing the agent with the CLI locks it out of the running server at once.
    assert serve.cli("agents", "remove", "counter").returncode == 0
    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        gone = await http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Authorization": f"Bearer {counter['token']}"},
        )
        assert gone.status_code == 401
