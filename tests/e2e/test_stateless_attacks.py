"""Attacks on the stateless MCP door (MAILGATE_MCP_STATELESS) and its 2026-07-28 requestState,
sealed with a key every front door derives from the secret key and bound to the agent, against
one real `mailgate serve`: an agent holding only its token tries to replay a state into another
call, tool or agent, to tamper with it, forge it, outlive it, or turn it into an approval."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.server.request_state import AESGCMRequestStateCodec, _principal_claim, _request_identity
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult, InputRequiredResult

from server.tools.client_approval import ASKED
from tests.support.serve import Serve
from workflows.trust.links import link_key
from workflows.trust.marks import mark_key
from workflows.trust.proofs import proof_key

pytestmark = pytest.mark.e2e
LINKED = "linked@mailgate.local"
SECRET = secrets.token_urlsafe(48)
REFUSED = "Invalid or expired requestState"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    data = Path(tmp_path_factory.mktemp("stateless")) / "data"
    data.mkdir()
    config = data.parent / "mailgate.toml"
    config.write_text(f'[[mailboxes]]\naddress = "{LINKED}"\nclient_approval = "link"\n')
    serve = Serve(
        data,
        extra_env={"MAILGATE_MCP_STATELESS": "1", "MAILGATE_SECRET_KEY": SECRET, "MAILGATE_CONFIG": str(config)},
    )
    serve.start()
    yield serve
    serve.stop()
    with contextlib.suppress(OSError, ValueError, KeyError):
        os.kill(serve.temporal_pid(), signal.SIGKILL)


def agent_token(stack: Serve, name: str) -> str:
    done = stack.cli("agents", "add", name, "--mailbox", LINKED, "--json")
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["token"])


@contextlib.asynccontextmanager
async def modern(stack: Serve, token: str) -> AsyncIterator[Client]:
    async def shown(_context: object, params: ElicitRequestParams) -> ElicitResult:
        return ElicitResult(action="accept")

    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(
            streamable_http_client(f"{stack.url}/mcp", http_client=http),
            mode="2026-07-28",
            elicitation_callback=shown,  # type: ignore[arg-type]
        ) as client,
    ):
        await client.list_tools()
        yield client


async def first_round(client: Client, arguments: dict[str, Any]) -> str:
    """The input_required answer's sealed state, as the agent's client receives it."""
    first = await client.session.call_tool("durable_send", arguments, allow_input_required=True)
    assert isinstance(first, InputRequiredResult) and first.request_state, first
    return first.request_state


async def retry(
    client: Client, arguments: dict[str, Any], state: str, tool: str = "durable_send"
) -> CallToolResult | InputRequiredResult:
    answer = await client.session.call_tool(tool, arguments, request_state=state, allow_input_required=True)
    assert isinstance(answer, CallToolResult | InputRequiredResult), answer
    return answer


def sealed(key: bytes, claims: dict[str, Any]) -> str:
    """A state as the SDK seals it, under ``key`` (what an attacker holding that key could make)."""
    return AESGCMRequestStateCodec([key]).seal(json.dumps(claims, separators=(",", ":")).encode())


def claims_for(stack_principal: str, arguments: dict[str, Any], *, exp: float, state: str) -> dict[str, Any]:
    """The SDK's own envelope (its private helpers), for this agent, call and arguments."""
    target, digest = _request_identity("tools/call", {"name": "durable_send", "arguments": arguments})
    now = time.time()
    return {
        "v": 1,
        "iat": now - 1,
        "exp": exp,
        "m": "tools/call",
        "t": target,
        "a": digest,
        "s": state,
        "aud": "mailgate",
        "p": _principal_claim(stack_principal),
    }


def request_state_key() -> bytes:
    """The key serve derives (server/mcp_server.py), before the SDK's own HKDF."""
    return hmac.new(SECRET.encode(), b"mailgate/mcp/request-state", hashlib.sha256).digest()


async def test_a_request_state_serves_one_call_of_one_agent_and_approves_nothing(stack: Serve) -> None:
    one, two = agent_token(stack, "state-one"), agent_token(stack, "state-two")
    args = {"mailbox": LINKED, "to": ["b@example.com"], "subject": "state", "body": "b"}
    async with modern(stack, one) as mine, modern(stack, two) as theirs:
        state = await first_round(mine, args)

        def envelope(key: bytes, *, ttl: float = 60) -> str:
            return sealed(key, claims_for("agent:state-one", args, exp=time.time() + ttl, state="x"))

        other = {**args, "subject": "other"}
        elsewhere = {**args, "mailbox": "agent@mailgate.local"}
        tampered = state[:-6] + ("AAAAAA" if not state.endswith("AAAAAA") else "BBBBBB")
        attempts: dict[str, tuple[Client, str, dict[str, Any], str]] = {
            "another agent": (theirs, "durable_send", args, state),
            "another subject": (mine, "durable_send", other, state),
            "another mailbox": (mine, "durable_send", elsewhere, state),
            "another tool": (mine, "list_sends", {"mailbox": LINKED}, state),
            "a tampered state": (mine, "durable_send", args, tampered),
            "an expired state": (mine, "durable_send", args, envelope(request_state_key(), ttl=-1)),
            # Keys derived from the same secret for other purposes seal nothing this door opens.
            "the links' key": (mine, "durable_send", args, envelope(link_key(SECRET.encode()))),
            "the proofs' key": (mine, "durable_send", args, envelope(proof_key(SECRET.encode()))),
            "the marks' key": (mine, "durable_send", args, envelope(mark_key(SECRET.encode()))),
            "the secret itself": (mine, "durable_send", args, envelope(SECRET.encode())),
        }
        for _what, (client, tool, arguments, replayed) in attempts.items():
            with pytest.raises(MCPError, match=REFUSED):  # `pytest -l` shows `_what` on a failure
                await retry(client, arguments, replayed, tool=tool)

        # Sealed right (as only a holder of the secret key could), the state is just what mailgate
        # wrote: the dashboard link was shown. Any other text asks the human again; neither decides.
        def right(state: str) -> str:
            return sealed(request_state_key(), claims_for("agent:state-one", args, exp=time.time() + 60, state=state))

        asked_again = await retry(mine, args, right("approve"))
        assert isinstance(asked_again, InputRequiredResult), asked_again
        forged = await retry(mine, args, right(ASKED))
        honest = await retry(mine, args, state)
    for done in (forged, honest):
        assert isinstance(done, CallToolResult), done
        assert (done.structured_content or {}).get("status") == "pending_approval", done.content
    assert isinstance(honest, CallToolResult)
    send_id = str((honest.structured_content or {})["send_id"])
    admin = {"Authorization": f"Bearer {stack.token('admin')}"}
    status = httpx.get(f"{stack.url}/api/sends/{send_id}", headers=admin, timeout=30)
    assert status.status_code == 200 and status.json()["status"] == "pending_approval", status.text


async def test_a_stateless_door_keeps_each_agent_to_its_own_mailboxes(stack: Serve) -> None:
    """Every request stands alone here: the agent must come from each request's own token."""
    token = agent_token(stack, "state-scoped")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(f"{stack.url}/mcp", http_client=http), mode="legacy") as legacy:
            for tool, args in (
                ("check_inbox", {"mailbox": "agent@mailgate.local"}),
                (
                    "durable_send",
                    {"mailbox": "agent@mailgate.local", "to": ["b@example.com"], "subject": "s", "body": "b"},
                ),
                ("check_inbox", {}),  # the default mailbox is not this agent's either
            ):
                refused = await legacy.call_tool(tool, args)
                assert refused.is_error and "not yours" in str(refused.content), (tool, refused.content)
        async with modern(stack, token) as client:
            refused = await client.call_tool("check_inbox", {"mailbox": "agent@mailgate.local"})
            assert refused.is_error and "not yours" in str(refused.content), refused.content
