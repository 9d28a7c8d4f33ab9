"""Failed tokens and sign-ins back off per client address (issue 25, item 10).

A real uvicorn serves the app; a second client connects from 127.0.0.2, another address.
"""

from __future__ import annotations

import asyncio
import re

import httpx

from server.web.throttle import FREE_FAILURES
from tests.support.app import ADMIN_TOKEN, AGENT_TOKEN
from tests.support.web import Web

WRONG = {"Authorization": "Bearer wrong-token-0123456789-0123456789"}
MCP_PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
STREAMABLE = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    page = await client.get("/signin")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return await client.post("/signin", data={"csrf": found.group(1), "name": "alice", "token": token})


async def test_wrong_tokens_back_off_for_every_door_of_that_address_only(web: Web) -> None:
    http = web.anonymous
    for _ in range(FREE_FAILURES):
        assert (await http.get("/api/approvals", headers=WRONG)).status_code == 401
    # Now the address waits before any credential it sends is even checked: API, MCP, sign-in.
    throttled = await http.get("/api/approvals", headers=WRONG)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    right = await http.get("/api/approvals", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert right.status_code == 429  # a right guess would be told apart otherwise
    mcp = await http.post("/mcp", json=MCP_PING, headers={**STREAMABLE, "Authorization": f"Bearer {AGENT_TOKEN}"})
    assert mcp.status_code == 429
    signin = await sign_in(http, ADMIN_TOKEN)
    assert signin.status_code == 429 and "Too many failed sign-ins" in signin.text

    # Another address is not affected.
    other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=web.url, transport=other, timeout=30) as elsewhere:
        ok = await elsewhere.get("/api/approvals", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert ok.status_code == 200, ok.text

    # The wait doubles with each further failure.
    await asyncio.sleep(1.1)
    assert (await http.get("/api/approvals", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).status_code == 200
    assert (await http.post("/mcp", json=MCP_PING, headers={**STREAMABLE, **WRONG})).status_code == 401
    again = await http.get("/api/approvals", headers=WRONG)
    assert again.status_code == 429 and again.headers["Retry-After"] == "2"


async def test_failed_sign_ins_count_too(web: Web) -> None:
    http = web.anonymous
    for _ in range(FREE_FAILURES):
        assert (await sign_in(http, "not-the-admin-token-0123456789-xyz")).status_code == 401
    assert (await sign_in(http, ADMIN_TOKEN)).status_code == 429
    assert (await http.get("/api/approvals", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).status_code == 429
    await asyncio.sleep(1.1)
    signed_in = await sign_in(http, ADMIN_TOKEN)
    assert signed_in.status_code in (302, 303), signed_in.text


async def test_requests_without_a_token_are_not_failures(web: Web) -> None:
    # An MCP client probing without a token (as OAuth clients do first) uses up nothing.
    for _ in range(FREE_FAILURES * 3):
        assert (await web.anonymous.post("/mcp", json=MCP_PING, headers=STREAMABLE)).status_code == 401
    assert (await web.admin.get("/api/approvals")).status_code == 200
