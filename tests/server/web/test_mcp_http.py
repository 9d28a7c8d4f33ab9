"""MCP over streamable HTTP and SSE: the SDK's own client, and who gets in."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from starlette.routing import Match, Mount, Route

from tests.support.app import ADMIN_TOKEN, AGENT_TOKEN
from tests.support.web import Web


async def test_streamable_http_with_the_agent_token(web: Web) -> None:
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{web.url}/mcp", http_client=http)) as client,
    ):
        names = {t.name for t in (await client.list_tools()).tools}
        assert "durable_send" in names
        result = await client.call_tool(
            "durable_send",
            {
                "mailbox": web.app.settings.default_mailbox,
                "to": ["b@example.com"],
                "subject": "s",
                "body": "b",
            },
        )
        assert result.structured_content is not None
        assert result.structured_content["status"] == "pending_approval"


async def test_an_agent_call_tries_no_route_but_its_own(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every agent call is a request to /mcp, and Starlette tries the app's routes in order: behind
    the fifty of the API and the dashboard, matching alone cost each call ~30 µs (issue 20)."""
    tried: list[str] = []
    for kind in (Route, Mount):

        def counting(self: Route | Mount, scope: Any, original: Any = kind.matches) -> tuple[Match, Any]:
            if scope.get("path") == "/mcp":
                tried.append(self.path)
            result: tuple[Match, Any] = original(self, scope)
            return result

        monkeypatch.setattr(kind, "matches", counting)
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{web.url}/mcp", http_client=http)) as client,
    ):
        tried.clear()  # the session's handshake
        result = await client.call_tool("list_mailboxes", {})
    assert not result.is_error
    assert tried and set(tried) == {"/mcp"}  # each request to /mcp tried /mcp only


async def test_sse_with_the_agent_token(web: Web) -> None:
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with sse_client(f"{web.url}/sse", headers=headers) as streams, ClientSession(*streams) as session:
        await session.initialize()
        result = await session.call_tool("list_mailboxes", {})
        assert result.structured_content is not None
        assert web.app.settings.default_mailbox in {m["address"] for m in result.structured_content["mailboxes"]}


async def test_mcp_endpoints_refuse_missing_wrong_and_admin_tokens(web: Web) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for path in ("/mcp", "/sse", "/messages/?session_id=x"):
        for headers in (
            {},
            {"Authorization": "Bearer wrong-wrong-wrong"},
            {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ):
            method = "GET" if path == "/sse" else "POST"
            response = await web.anonymous.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (path, headers)
            challenge = response.headers["WWW-Authenticate"]
            assert challenge.startswith("Bearer ") and "resource_metadata=" not in challenge
            if "wrong" not in str(headers):
                assert "Authorization: Bearer TOKEN" in challenge or "not the admin token" in challenge
    # No protected-resource metadata without an authorization server to name in it.
    assert (await web.anonymous.get("/.well-known/oauth-protected-resource/mcp")).status_code == 404


async def test_mcp_refuses_foreign_origins_and_oversized_bodies(web: Web) -> None:
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}", "Accept": "application/json, text/event-stream"}
    foreign = await web.anonymous.post(
        "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={**headers, "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    oversized = await web.anonymous.post(
        "/mcp", content=b"x" * (5 * 1024 * 1024), headers={**headers, "Content-Type": "application/json"}
    )
    assert oversized.status_code == 413
