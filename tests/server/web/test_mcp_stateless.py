"""/mcp without sessions (MAILGATE_MCP_STATELESS, the default of `serve --no-worker`): what a
handshake-era client gets when every request may reach another front door.

The multi-node test (tests/e2e/test_multi_node.py) runs real doors behind a round-robin balancer;
here one door, in process, shows what needs no second one: no session id is handed out, progress
still streams during a call, and a request to the client (the dashboard link) degrades to the
usual answer instead of failing the send."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import ElicitRequestParams, ElicitResult

from server.app import Mailgate
from server.settings import MailboxEntry, Settings
from tests.support.app import AGENT_TOKEN, unique_mailbox
from tests.support.web import serving

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


@contextlib.asynccontextmanager
async def stateless_client(app: Mailgate, **options: object) -> AsyncIterator[Client]:
    stateless = dataclasses.replace(app, settings=app.settings.model_copy(update={"mcp_stateless": True}))
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with serving(stateless) as url, httpx2.AsyncClient(headers=headers, timeout=30) as http:
        opened = await http.post(
            f"{url}/mcp", json=INITIALIZE, headers={"Accept": "application/json, text/event-stream"}
        )
        assert opened.status_code == 200 and "mcp-session-id" not in opened.headers, opened.headers
        transport = streamable_http_client(f"{url}/mcp", http_client=http)
        async with Client(transport, mode="legacy", **options) as client:  # type: ignore[arg-type]
            yield client


def test_front_doors_alone_default_to_stateless(tmp_path: Path) -> None:
    def stateless(run_worker: bool = True, mcp_stateless: bool | None = None) -> bool:
        settings = Settings(
            data_dir=tmp_path, temporal_address="127.0.0.1:7233", run_worker=run_worker, mcp_stateless=mcp_stateless
        )
        return settings.mcp_stateless_http

    assert stateless() is False  # one machine: sessions, as before
    assert stateless(run_worker=False) is True
    assert stateless(run_worker=False, mcp_stateless=False) is False
    assert stateless(mcp_stateless=True) is True


async def test_no_session_and_progress_still_streams(app: Mailgate, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("server.reply_waits.PROGRESS_EVERY", 0.2)
    reports: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append(progress)

    async with stateless_client(app) as client:
        sent = await client.call_tool(
            "durable_send",
            {"mailbox": app.settings.default_mailbox, "to": ["b@example.com"], "subject": "s", "body": "b"},
        )
        assert sent.structured_content is not None, sent.content
        waited = await client.call_tool(
            "wait_for_reply",
            {"send_id": sent.structured_content["send_id"], "timeout_minutes": 0.02},
            progress_callback=on_progress,
        )
    assert (waited.structured_content or {}).get("status") == "timeout", waited.content
    assert reports, "no progress notifications while waiting"


async def test_the_dashboard_link_request_degrades_to_the_usual_answer(
    app: Mailgate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailgate.mcp")
    box = unique_mailbox("linked")
    await app.mailboxes.ensure(MailboxEntry(address=box, client_approval="link"), created_by="tests")
    asked: list[ElicitRequestParams] = []

    async def record(_context: object, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params)
        return ElicitResult(action="accept")

    async with stateless_client(app, elicitation_callback=record) as client:
        sent = await client.call_tool(
            "durable_send", {"mailbox": box, "to": ["b@example.com"], "subject": "s", "body": "b"}
        )
    # No back channel for a request mid-call: nobody is asked, and the send waits as usual.
    assert not sent.is_error and (sent.structured_content or {}).get("status") == "pending_approval", sent.content
    assert asked == []
    assert f"not asking the client to open the dashboard for {sent.structured_content['send_id']}" in caplog.text
