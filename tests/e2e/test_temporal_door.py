"""Temporal is not an approval door: a real `mailgate serve`, attacked by a temporalio client.

Anything that reaches Temporal (the agent's own shell can reach the embedded gRPC port) may
signal, update and start workflows. Without a proof made by mailgate's front doors none of it
approves, loosens or delivers; each refusal is recorded; the real approval works afterwards.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from temporalio.client import Client, WorkflowUpdateFailedError

from tests.support.serve import Serve
from tests.support.temporal_access import attacker_client, send_request, start_send
from tests.support.wait import eventually
from workflows import ids
from workflows.mailbox import MailboxWorkflow
from workflows.mailbox_models import Reconfigure, UpgradeRedeem
from workflows.models import Decision, ModeChange, SendRequest, SendState
from workflows.send import SendEmailWorkflow

pytestmark = pytest.mark.e2e
MAILBOX = "agent@mailgate.local"


async def events(client: Client, send_id: str) -> list[tuple[str, str]]:
    state = await client.get_workflow_handle(send_id).query(SendEmailWorkflow.state)
    return [(e.kind, e.detail) for e in state.events]


async def test_forged_decisions_loosenings_and_starts_change_nothing(serve: Serve) -> None:
    serve.start()
    # The Temporal UI is off unless asked for; gRPC stays on loopback.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{serve.ui_port}/", timeout=5)
    assert "Temporal UI:  off (mailgate serve --temporal-ui starts it)" in serve.log()
    assert f"Temporal:     127.0.0.1:{serve.temporal_port} (gRPC, loopback only)" in serve.log()
    async with serve.mcp() as agent:
        sent = await agent.call_tool(
            "durable_send", {"mailbox": MAILBOX, "to": ["bob@example.com"], "subject": "Q3", "body": "numbers"}
        )
        assert sent.structured_content is not None and sent.structured_content["status"] == "pending_approval"
        send_id = str(sent.structured_content["send_id"])
        asked = await agent.call_tool("request_upgrade", {"mailbox": MAILBOX, "mode": "autonomous", "reason": "x"})
        assert not asked.is_error, asked.content

    temporal = await attacker_client(serve)
    send = temporal.get_workflow_handle_for(SendEmailWorkflow.run, send_id)
    approve = Decision(decision="approve", approver="alice", channel="api")

    # 1. A decision signalled straight in (no proof, then a made-up one): refused, still waiting.
    await send.signal(SendEmailWorkflow.decide_signal, approve)
    await send.signal(
        SendEmailWorkflow.decide_signal, approve.model_copy(update={"proof": "1.00ff", "decision_id": "x"})
    )
    # 2. The same as an update: refused with a reason.
    with pytest.raises(WorkflowUpdateFailedError):
        await send.execute_update(SendEmailWorkflow.decide, approve)

    async def refused_three_times() -> bool:
        return [kind for kind, _ in await events(temporal, send_id)].count("decision_refused") == 3

    deadline = asyncio.get_running_loop().time() + 30
    while not await refused_three_times():
        assert asyncio.get_running_loop().time() < deadline, await events(temporal, send_id)
        await asyncio.sleep(0.2)
    state = await send.query(SendEmailWorkflow.state)
    assert state.status == "pending_approval" and state.decision is None
    assert all("no valid proof" in detail for kind, detail in state_events(state) if kind == "decision_refused")

    # 3. Loosening the mailbox straight in: a mode change, a reconfiguration, a code-less redeem.
    box = temporal.get_workflow_handle_for(MailboxWorkflow.run, ids.mailbox_workflow_id(MAILBOX))
    before = await box.query(MailboxWorkflow.describe)
    pending = [u.request_id for u in before.upgrades if u.status == "pending"]
    assert pending, before.upgrades
    with pytest.raises(WorkflowUpdateFailedError):
        await box.execute_update(MailboxWorkflow.set_mode, ModeChange(mode="autonomous", actor="ops", role="human"))
    loose = before.config.model_copy(update={"approvers": ("mallory",)})
    with pytest.raises(WorkflowUpdateFailedError):
        await box.execute_update(MailboxWorkflow.configure, Reconfigure(config=loose, actor="ops"))
    with pytest.raises(WorkflowUpdateFailedError):
        await box.execute_update(MailboxWorkflow.redeem_upgrade, UpgradeRedeem(request_id=pending[0], actor="agent"))
    after = await box.query(MailboxWorkflow.describe)
    assert after.config == before.config
    assert [e.kind for e in after.audit].count("change_refused") == 3

    # 4. A send started straight in Temporal that needs no approval, and one wearing the real
    #    send's proof with its mode changed: neither delivers anything.
    real = await temporal.get_workflow_handle(send_id).fetch_history()
    [signed] = await temporal.data_converter.decode(
        real.events[0].workflow_execution_started_event_attributes.input.payloads, [SendRequest]
    )
    assert isinstance(signed, SendRequest) and signed.proof
    for proof in (None, signed.proof):
        handle = await start_send(temporal, send_request(MAILBOX, f"forged-{proof}", proof=proof))
        final = await asyncio.wait_for(handle.result(), 30)
        assert final.status == "blocked", final
        assert final.reason.startswith("refused:"), final.reason
    assert serve.deliveries() == []

    # The real approval still works, once.
    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        response = await http.post(
            f"/api/approvals/{send_id}/approve",
            json={"approver": "alice"},
            headers={"Authorization": f"Bearer {serve.token('admin')}"},
        )
    assert response.status_code == 200, response.text
    await eventually(lambda: len(serve.deliveries()) == 1)
    assert (await send.query(SendEmailWorkflow.state)).status == "sent"
    # And so does a human's loosening through the CLI.
    changed = serve.cli("mailbox", "set-mode", MAILBOX, "monitored")
    assert changed.returncode == 0, changed.stderr
    assert (await box.query(MailboxWorkflow.describe)).config.mode == "monitored"


def state_events(state: SendState) -> list[tuple[str, str]]:
    return [(e.kind, e.detail) for e in state.events]


def test_the_temporal_ui_refuses_a_foreign_host_or_origin(serve: Serve) -> None:
    serve.extra_args = ["--temporal-ui"]
    serve.start()
    ui = f"http://127.0.0.1:{serve.ui_port}"
    assert f"Temporal UI:  {ui} (answers only a loopback Host" in serve.log()
    # A page whose DNS name was rebound to 127.0.0.1: its Host is its own name.
    rebound = httpx.get(f"{ui}/", headers={"Host": f"evil.example:{serve.ui_port}"}, timeout=10)
    assert rebound.status_code == 421
    cross = httpx.get(f"{ui}/api/v1/namespaces", headers={"Origin": "http://evil.example"}, timeout=10)
    assert cross.status_code == 403
    assert "workflow" not in rebound.text.lower() + cross.text.lower()
    # The human at the machine gets the UI.
    page = httpx.get(f"{ui}/", timeout=30, follow_redirects=True)
    assert page.status_code == 200 and "<html" in page.text.lower()
