"""The mcp SDK's own client over stdio, streamable HTTP and SSE, in both protocol eras.

A handshake-era client (`mode="legacy"`: initialize) and a 2026-07-28 one (pinned, or found
by the default `auto` probe of server/discover) must all reach the same tools and state.
"""

from __future__ import annotations

import uuid

import pytest
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS

from tests.support.interop import MODERN, TRANSPORTS, Transport, list_all_tools, sdk_client
from tests.support.serve import Serve

pytestmark = [pytest.mark.e2e, pytest.mark.interop]


@pytest.mark.parametrize("mode", ["legacy", MODERN, "auto"])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_both_protocol_eras_send_and_read_back(stack: Serve, transport: Transport, mode: str) -> None:
    async with sdk_client(stack, transport, mode) as client:
        if mode == "legacy":
            assert client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
        else:
            assert client.protocol_version == MODERN  # auto finds the modern protocol on its own
        if mode != MODERN:  # a pinned version adopts without asking, so only the others learn the name
            assert client.server_info is not None and client.server_info.name == "mailgate"

        names = {t.name for t in await list_all_tools(client)}
        assert {"durable_send", "approval_status"} <= names

        tag = uuid.uuid4().hex[:10]
        sent = await client.call_tool(
            "durable_send",
            {
                "mailbox": "agent@mailgate.local",
                "to": ["carol@example.com"],
                "subject": f"{transport} {mode} {tag}",
                "body": "Over the SDK client.",
            },
        )
        assert not sent.is_error, sent.content
        assert sent.structured_content is not None
        assert sent.structured_content["status"] == "pending_approval"
        send_id = sent.structured_content["send_id"]

        status = await client.call_tool("approval_status", {"send_id": send_id})
        assert not status.is_error, status.content
        assert status.structured_content is not None
        assert (status.structured_content["send_id"], status.structured_content["status"]) == (
            send_id,
            "pending_approval",
        )
