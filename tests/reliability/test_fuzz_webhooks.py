"""Webhook bodies, fuzzed: correctly signed garbage gets a clear 4xx, never a crash or a decision.

Every body is signed with the right secret, so it gets past the signature check and reaches
the parsing and the lookup of the send. Whatever the body says, the answer is one of the
documented statuses, and a send is decided only by a well-formed decision that names it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from starlette.types import ASGIApp

from server.mcp_server import build_mcp
from server.web.app import build_app
from tests.support.loop_thread import LoopThread, Stack
from workflows.models import Decision, SendState
from workflows.trust import standard_webhooks

APPROVAL_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
MULTIMAIL_SECRET = "multimail-fuzz-secret"
ANSWERS = {200, 400, 403, 404, 409, 413}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=8,
)
KEYS = [
    "send_id",
    "decision",
    "approver",
    "reason",
    "type",
    "event",
    "workflow_id",
    "approver_email",
    "pending_id",
    "data",
    "email_id",
    "decided_by",
    "tags",
    "metadata",
]


def bodies(send_id: str) -> st.SearchStrategy[bytes]:
    shaped = st.dictionaries(
        st.sampled_from(KEYS),
        st.one_of(
            json_values,
            st.just(send_id),
            st.sampled_from(["approve", "reject", "approval.approved", "oversight.rejected", "agent", ""]),
        ),
        max_size=7,
    ).map(lambda d: json.dumps(d).encode())
    return st.one_of(shaped, st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()))


def approval_headers(body: bytes) -> dict[str, str]:
    headers = standard_webhooks.headers(APPROVAL_SECRET, f"msg_{uuid.uuid4().hex}", int(time.time()), body)
    return {**headers, "content-type": "application/json"}


def multimail_headers(body: bytes) -> dict[str, str]:
    digest = hmac.new(MULTIMAIL_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-MultiMail-Signature": digest, "content-type": "application/json"}


async def built(stack: Stack) -> ASGIApp:
    return build_app(stack.app, build_mcp(stack.app), ready=lambda: True)


async def post(stack: Stack, app: ASGIApp, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    base = f"http://127.0.0.1:{stack.app.settings.port}"
    async with httpx.AsyncClient(transport=transport, base_url=base) as http:
        return await http.post(path, content=body, headers=headers)


async def pending(stack: Stack) -> str:
    result = await stack.app.sends.submit(
        mailbox=stack.app.settings.default_mailbox, to=["bob@example.com"], subject="s", body="b"
    )
    return result.send_id


def decided(state: SendState) -> tuple[Decision | None, str]:
    """What a webhook request could change: the decision, and the status, except that an approved
    send goes from sending to sent by itself (an earlier example may have approved it)."""
    return state.decision, "sending" if state.status == "sent" else state.status


def test_signed_junk_never_crashes_the_webhooks_nor_decides_a_send(threaded: tuple[LoopThread, Stack]) -> None:
    runner, stack = threaded
    stack.app.settings.approval_webhook_secret = SecretStr(APPROVAL_SECRET)
    stack.app.settings.multimail_webhook_secret = SecretStr(MULTIMAIL_SECRET)
    send_id = runner.run(pending(stack))
    # One app for all the examples, as in production (building one takes longer than a request).
    app = runner.run(built(stack))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=bodies(send_id), multimail=st.booleans())
    def fuzz(body: bytes, multimail: bool) -> None:
        path, headers = (
            ("/webhooks/multimail", multimail_headers(body))
            if multimail
            else ("/webhooks/approvals", approval_headers(body))
        )
        before = decided(runner.run(stack.app.sends.status(send_id)))
        response = runner.run(post(stack, app, path, body, headers))
        assert response.status_code in ANSWERS, (body, response.status_code, response.text)
        if response.status_code != 200:
            assert "error" in response.json()
            assert decided(runner.run(stack.app.sends.status(send_id))) == before, (body, response.text)

    fuzz()
    # Only a well-formed decision naming the send may have decided it.
    final: Any = runner.run(stack.app.sends.status(send_id))
    assert final.status in ("pending_approval", "sending", "sent", "rejected")
