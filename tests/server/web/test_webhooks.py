"""Signed decisions from outside: Standard Webhooks and MultiMail, against a real workflow."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from server.app import Mailgate
from server.credentials import load_secrets
from server.notifications import notify_config
from server.validation import PolicyChanges
from tests.server.test_manage import _ids
from tests.support.app import make_settings
from tests.support.histories import keep_history
from tests.support.ports import free_port
from tests.support.wait import wait_for_status
from tests.support.web import Web, serving
from workflows.temporal import STATUS
from workflows.trust import standard_webhooks
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker

APPROVAL_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
MULTIMAIL_SECRET = "whsec_multimail-secret-for-tests"


async def pending(app: Mailgate, subject: str = "Quarterly numbers") -> str:
    result = await app.sends.submit(
        mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject=subject, body=f"Body {uuid.uuid4()}"
    )
    return result.send_id


def enable(web: Web) -> None:
    web.app.settings.approval_webhook_secret = SecretStr(APPROVAL_SECRET)
    web.app.settings.multimail_webhook_secret = SecretStr(MULTIMAIL_SECRET)


def signed(body: bytes, webhook_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = standard_webhooks.headers(APPROVAL_SECRET, webhook_id or f"msg_{uuid.uuid4().hex}", stamp, body)
    return {**headers, "content-type": "application/json"}


def event(send_id: str, decision: str = "approve", **extra: Any) -> bytes:
    return json.dumps({"send_id": send_id, "decision": decision, "approver": "carol@example.com", **extra}).encode()


def mm_signature(body: bytes, prefix: str = "sha256=") -> dict[str, str]:
    digest = hmac.new(MULTIMAIL_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-MultiMail-Signature": prefix + digest, "content-type": "application/json"}


async def post(web: Web, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await web.anonymous.post(path, content=body, headers=headers)


async def test_a_signed_approval_resumes_the_send_and_it_is_delivered(web: Web) -> None:
    enable(web)
    send_id = await pending(web.app)
    body = event(send_id, reason="looks right")
    response = await post(web, "/webhooks/approvals", body, signed(body))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted", "send_id": send_id, "decision": "approve"}
    state = await wait_for_status(web.app, send_id, ["sent"])
    assert state.decision is not None
    assert (state.decision.approver, state.decision.channel, state.decision.reason) == (
        "carol@example.com",
        "webhook",
        "looks right",
    )
    await keep_history(web.app, send_id, "send-webhook-approved")


async def test_a_signed_rejection_rejects(web: Web) -> None:
    enable(web)
    send_id = await pending(web.app)
    body = event(send_id, "reject", reason="wrong numbers")
    assert (await post(web, "/webhooks/approvals", body, signed(body))).status_code == 200
    state = await wait_for_status(web.app, send_id, ["rejected"])
    assert state.reason == "wrong numbers"


async def test_bad_missing_and_stale_signatures_are_401_and_change_nothing(web: Web) -> None:
    enable(web)
    send_id = await pending(web.app)
    body = event(send_id)
    good = signed(body)
    cases = [
        {"content-type": "application/json"},
        {**good, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()},
        {**good, "webhook-id": "msg_other"},
        signed(body, timestamp=int(time.time()) - 360),
        signed(body, timestamp=int(time.time()) + 360),
    ]
    for headers in cases:
        response = await post(web, "/webhooks/approvals", body, headers)
        assert response.status_code == 401, (headers, response.text)
    tampered = event(send_id, "reject", reason="x")
    assert (await post(web, "/webhooks/approvals", tampered, good)).status_code == 401
    await asyncio.sleep(0.3)
    assert (await web.app.sends.status(send_id)).status == "pending_approval"


async def test_malformed_unknown_decided_and_oversized_bodies(web: Web) -> None:
    enable(web)
    send_id = await pending(web.app)
    for body in (b"{not json", b"[]", json.dumps({"send_id": send_id, "decision": "maybe", "approver": "c"}).encode()):
        response = await post(web, "/webhooks/approvals", body, signed(body))
        assert response.status_code == 400, (body, response.text)
    bad_id = event("not-a-send")
    assert (await post(web, "/webhooks/approvals", bad_id, signed(bad_id))).status_code == 400
    unknown = event("send-aaaaaaaaaaaaaaaaaaaa")
    response = await post(web, "/webhooks/approvals", unknown, signed(unknown))
    assert response.status_code == 404, response.text
    huge = event(send_id, reason="x" * (1024 * 1024))
    assert (await post(web, "/webhooks/approvals", huge, signed(huge))).status_code == 413
    assert (await web.app.sends.status(send_id)).status == "pending_approval"

    first = event(send_id, "reject", reason="no")
    assert (await post(web, "/webhooks/approvals", first, signed(first))).status_code == 200
    await wait_for_status(web.app, send_id, ["rejected"])
    again = event(send_id)
    response = await post(web, "/webhooks/approvals", again, signed(again))
    assert response.status_code == 409, response.text
    assert "rejected" in response.json()["error"]


async def test_the_same_delivery_ten_times_at_once_has_one_effect(web: Web) -> None:
    enable(web)
    send_id = await pending(web.app)
    body = event(send_id)
    headers = signed(body, webhook_id="msg_same_delivery")
    responses = await asyncio.gather(*(post(web, "/webhooks/approvals", body, headers) for _ in range(10)))
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    state = await wait_for_status(web.app, send_id, ["sent"])
    kinds = [e.kind for e in state.events]
    assert kinds.count("approved") == 1
    assert "decision_refused" not in kinds
    assert len(web.app.sandbox.deliveries(web.app.settings.default_mailbox)) == 1
    # A retry after the send went out is still the same delivery: answered 200, not 409.
    late = await post(web, "/webhooks/approvals", body, signed(body, webhook_id="msg_same_delivery"))
    assert late.status_code == 200
    assert late.json()["status"] == "duplicate"


async def test_without_a_configured_secret_the_endpoint_is_off(web: Web) -> None:
    send_id = await pending(web.app)
    body = event(send_id)
    response = await post(web, "/webhooks/approvals", body, signed(body))
    assert response.status_code == 503
    assert "MAILGATE_APPROVAL_WEBHOOK_SECRET" in response.json()["error"]


async def test_multimail_seed_and_oversight_events(web: Web) -> None:
    enable(web)
    first = await pending(web.app, "seed event")
    seed = json.dumps(
        {"type": "approval.approved", "workflow_id": first, "approver_email": "ops@example.com", "pending_id": "em_1"}
    ).encode()
    response = await post(web, "/webhooks/multimail", seed, mm_signature(seed))
    assert response.status_code == 200, response.text
    state = await wait_for_status(web.app, first, ["sent"])
    assert state.decision is not None
    assert (state.decision.approver, state.decision.channel) == ("ops@example.com", "multimail")

    second = await pending(web.app, "oversight event")
    envelope = json.dumps(
        {
            "event": "oversight.rejected",
            "timestamp": "2026-03-09T14:22:00.000Z",
            "data": {
                "email_id": "em_4bNx8kT2wRm6pJcQ9vYs",
                "mailbox_id": "mb_1",
                "decided_by": "lead@example.com",
                "reason": "tone",
                "tags": {"mailgate_send_id": second},
            },
        }
    ).encode()
    response = await post(web, "/webhooks/multimail", envelope, mm_signature(envelope, prefix=""))
    assert response.status_code == 200, response.text
    state = await wait_for_status(web.app, second, ["rejected"])
    assert state.reason == "tone"


async def test_multimail_refusals(web: Web) -> None:
    enable(web)
    send_id = await pending(web.app)
    body = json.dumps({"type": "approval.approved", "workflow_id": send_id, "approver_email": "o@example.com"}).encode()
    assert (await post(web, "/webhooks/multimail", body, {"content-type": "application/json"})).status_code == 401
    wrong = {"X-MultiMail-Signature": "sha256=" + "0" * 64}
    assert (await post(web, "/webhooks/multimail", body, wrong)).status_code == 401
    other = json.dumps({"event": "message.received", "data": {"email_id": "em_2"}}).encode()
    ignored = await post(web, "/webhooks/multimail", other, mm_signature(other))
    assert ignored.status_code == 200
    assert ignored.json()["status"] == "ignored"
    unknown = json.dumps({"event": "oversight.approved", "data": {"email_id": "em_unknown"}}).encode()
    response = await post(web, "/webhooks/multimail", unknown, mm_signature(unknown))
    assert response.status_code == 404
    assert "em_unknown" in response.json()["error"]
    for bad in (b"{", json.dumps({"workflow_id": send_id}).encode()):
        assert (await post(web, "/webhooks/multimail", bad, mm_signature(bad))).status_code == 400
    assert (await web.app.sends.status(send_id)).status == "pending_approval"
    ten = await asyncio.gather(*(post(web, "/webhooks/multimail", body, mm_signature(body)) for _ in range(10)))
    assert {r.status_code for r in ten} == {200}
    state = await wait_for_status(web.app, send_id, ["sent"])
    assert [e.kind for e in state.events].count("approved") == 1


async def test_a_decision_while_every_worker_is_down_is_kept_and_applies_when_one_returns(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = make_settings(
        temporal_env, tmp_path, port=free_port(), approval_webhook_secret=SecretStr(APPROVAL_SECRET)
    )
    secrets = load_secrets(settings)
    app = Mailgate.build(settings, temporal_env.client, secrets)

    def worker() -> Worker:
        return build_worker(
            temporal_env.client,
            settings.task_queue,
            app.providers,
            notify_config(settings, secrets),
            proof_key=proof_key(secrets.secret_key),
        )

    async with worker():
        await app.mailboxes.create(settings.default_mailbox, created_by="tests")
        send_id = await pending(app)
        # Answered once the worker finished its first task: none is left in flight (Temporal
        # would hold back the signals below until that task timed out).
        await wait_for_status(app, send_id, ["pending_approval"])
    # No worker polls this task queue now.
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        body = event(send_id, reason="while down")
        response = await http.post("/webhooks/approvals", content=body, headers=signed(body, webhook_id="msg_down"))
        assert response.status_code == 200, response.text
        again = await http.post("/webhooks/approvals", content=body, headers=signed(body, webhook_id="msg_down"))
        assert again.json()["status"] == "duplicate"
        await asyncio.sleep(0.5)
        description = await temporal_env.client.get_workflow_handle(send_id).describe()
        assert description.typed_search_attributes.get(STATUS) == "pending_approval"
        async with worker():
            state = await wait_for_status(app, send_id, ["sent"])
    assert state.decision is not None
    assert state.decision.reason == "while down"
    assert len(app.sandbox.deliveries(settings.default_mailbox)) == 1


async def test_a_signed_decision_from_someone_who_is_not_an_approver_is_refused(web: Web) -> None:
    enable(web)
    mailbox = web.app.settings.default_mailbox
    await web.app.mailboxes.configure(mailbox, PolicyChanges(approvers=["alice@example.com"]), actor="ops")
    await asyncio.sleep(1.1)  # past the front door's one-second settings cache
    send_id = await pending(web.app)
    body = event(send_id)  # from carol@example.com
    response = await post(web, "/webhooks/approvals", body, signed(body))
    assert response.status_code == 403
    assert "not an approver" in response.json()["error"]
    assert (await web.app.sends.status(send_id)).status == "pending_approval"


async def test_the_signer_cannot_name_the_owner_of_the_asking_agent_as_approver(web: Web) -> None:
    """The one approver rule holds here too: not the requester, not the owner of the agent that asked."""
    enable(web)
    app = web.app
    box = app.settings.default_mailbox
    tag = uuid.uuid4().hex[:8]
    owner = app.identities.add_person(f"ann-{tag}@example.com").email
    helper = app.identities.add_agent(f"helper-{tag}", mailboxes=[box], owner=owner)
    send = await app.sends.submit(mailbox=box, to=["c@example.com"], subject="S", body="b", requester=helper.name)
    asked = await app.sends.submit(mailbox=box, to=["c@example.com"], subject="T", body="b", requester=owner)
    ids = await _ids(app, 11, f"Hook{tag}")
    trash = await app.trash.request(box, ids, await app.mailboxes.config(box), helper.name)
    for some_id in (send.send_id, trash.request_id):
        body = json.dumps({"send_id": some_id, "decision": "approve", "approver": owner.upper()}).encode()
        refused = await post(web, "/webhooks/approvals", body, signed(body))
        assert refused.status_code == 403, refused.text
        assert f"owns agent {helper.name}" in refused.json()["error"]
    body = json.dumps({"send_id": asked.send_id, "decision": "approve", "approver": owner}).encode()
    refused = await post(web, "/webhooks/approvals", body, signed(body))
    assert refused.status_code == 403 and "asked for this send" in refused.json()["error"], refused.text
    assert (await app.sends.status(send.send_id)).status == "pending_approval"
    assert (await app.sends.status(asked.send_id)).status == "pending_approval"
    assert (await app.trash.status(trash.request_id)).status == "pending_approval"
    body = event(trash.request_id, "reject")  # someone else may
    decided = await post(web, "/webhooks/approvals", body, signed(body))
    assert decided.status_code == 200, decided.text
