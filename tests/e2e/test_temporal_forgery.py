"""What Temporal access still could do after the front-door proofs, each tried against a real
`mailgate serve` by a temporalio client of its own: run a finished send again, replace a mailbox's
workflow with a looser one, write plain payloads when encryption is on, and start a notice.
None of it sends, loosens or is taken as mailgate's own; the normal paths keep working.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from tests.support.peers.smtp_sink import SmtpPeer
from tests.support.serve import Serve
from tests.support.temporal_access import (
    attacker_client,
    mode_seen_by_agent,
    replace_mailbox,
    send_request,
    start_send,
)
from tests.support.wait import eventually
from workflows import ids
from workflows.mailbox import MailboxWorkflow
from workflows.mailbox_models import MailboxState
from workflows.models import Decision, EmailAddress, EmailDraft, SendRequest, SendState
from workflows.notices import Notice
from workflows.notify import NotifyWorkflow
from workflows.send import SendEmailWorkflow
from workflows.temporal import data_converter
from workflows.trust.codec import EncryptionCodec, parse_keys

pytestmark = pytest.mark.e2e
MAILBOX = "agent@mailgate.local"
RELAY = "relay@relay.example"
DESK = "desk@mailgate.local"
BOSS = "boss@example.org"


def deliveries(stack: Serve) -> list[dict[str, Any]]:
    """What the sandbox delivered, as `mailgate sandbox list --json` shows it."""
    return [d.model_dump(mode="json") for d in stack.deliveries()]


async def approve(stack: Serve, send_id: str, approver: str = "alice") -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        response = await http.post(
            f"/api/approvals/{send_id}/approve",
            json={"approver": approver},
            headers={"Authorization": f"Bearer {stack.token('admin')}"},
        )
    assert response.status_code == 200, response.text


async def status_of(handle: WorkflowHandle[Any, Any]) -> SendState:
    state: SendState = await handle.query(SendEmailWorkflow.state)
    return state


async def recorded_request_and_decision(temporal: Client, send_id: str) -> tuple[SendRequest, Decision]:
    """What anyone who reads Temporal finds in a finished send's history: its signed request and
    the approval with its proof."""
    request: SendRequest | None = None
    decision: Decision | None = None
    async for event in temporal.get_workflow_handle(send_id).fetch_history_events():
        if event.HasField("workflow_execution_started_event_attributes"):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [request] = await temporal.data_converter.decode(payloads, [SendRequest])
        if event.HasField("workflow_execution_signaled_event_attributes"):
            signal = event.workflow_execution_signaled_event_attributes
            if signal.signal_name == "decide_signal":
                [decision] = await temporal.data_converter.decode(signal.input.payloads, [Decision])
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            accepted = event.workflow_execution_update_accepted_event_attributes.accepted_request.input
            if accepted.name == "decide":
                [decision] = await temporal.data_converter.decode(accepted.args.payloads, [Decision])
    assert request is not None and request.proof, "no signed request in the history"
    assert decision is not None and decision.proof, "no proven decision in the history"
    return request, decision


async def test_a_finished_send_run_again_under_its_id_delivers_nothing(serve: Serve, tmp_path: Path) -> None:
    # A send-only SMTP mailbox without the Sent check: the provider would take a second copy.
    relay = SmtpPeer(tmp_path / "relay", security="plain", auth=False).start()
    try:
        config = tmp_path / "mailgate.toml"
        config.write_text(
            f'[[mailboxes]]\naddress = "{RELAY}"\nprovider = "smtp_imap"\nsmtp_url = "{relay.url}"\n'
            'sent_check = false\noversight_mode = "gated_send"\n'
        )
        serve.extra_env["MAILGATE_CONFIG"] = str(config)
        await asyncio.to_thread(serve.start)
        async with serve.mcp() as agent:
            sent = await agent.call_tool(
                "durable_send", {"mailbox": RELAY, "to": ["bob@example.com"], "subject": "Invoice", "body": "once"}
            )
        assert sent.structured_content is not None, sent.content
        send_id = str(sent.structured_content["send_id"])
        await approve(serve, send_id)
        await eventually(lambda: len(relay.sink.received) == 1)
        temporal = await attacker_client(serve)
        first = temporal.get_workflow_handle(send_id)
        await eventually(lambda: status_is(first, "sent"), interval=0.2)

        # The attacker starts the send again under its id (the default id-reuse policy allows it
        # for a finished workflow), with the recorded request, and replays the recorded approval.
        request, decision = await recorded_request_and_decision(temporal, send_id)
        rerun = await start_send(temporal, request)
        await rerun.signal(SendEmailWorkflow.decide_signal, decision)
        final = await asyncio.wait_for(rerun.result(), 60)
        assert final.status == "blocked", final
        assert final.reason.startswith("refused:") and "another run of its workflow" in final.reason, final.reason
        await asyncio.sleep(1)
        assert len(relay.sink.received) == 1, [r.message_id for r in relay.sink.received]

        # Sends keep going out once each.
        async with serve.mcp() as agent:
            again = await agent.call_tool(
                "durable_send", {"mailbox": RELAY, "to": ["bob@example.com"], "subject": "Receipt", "body": "two"}
            )
        assert again.structured_content is not None, again.content
        await approve(serve, str(again.structured_content["send_id"]))
        await eventually(lambda: len(relay.sink.received) == 2)
    finally:
        relay.stop()


async def status_is(handle: WorkflowHandle[Any, Any], status: str) -> bool:
    return (await status_of(handle)).status == status


async def forge_mailbox(temporal: Client, address: str, **config: Any) -> None:
    """End the mailbox's workflow and start one of the attacker's, with a looser configuration
    (its memo says the same, as mailgate's own would)."""
    box = temporal.get_workflow_handle_for(MailboxWorkflow.run, ids.mailbox_workflow_id(address))
    real = await box.query(MailboxWorkflow.describe)
    forged = MailboxState(
        config=real.config.model_copy(update=config),
        created_by="mailgate",
        created_at=real.created_at,
        provisioned=True,
    )
    await replace_mailbox(temporal, forged)


async def test_a_forged_mailbox_workflow_loosens_nothing(serve: Serve) -> None:
    await asyncio.to_thread(serve.start)
    temporal = await attacker_client(serve)

    # 1. A send scheduled while a human had made the mailbox autonomous; the human then tightens
    #    it again, and the attacker replaces the mailbox's workflow with an autonomous one before
    #    the send is due. Delivery goes by mailgate's record: the send waits for a human.
    assert serve.cli("mailbox", "set-mode", MAILBOX, "autonomous").returncode == 0
    # The send right after the CLI returned goes by the change (tests/e2e/test_mode_changes.py).
    async with serve.mcp() as agent:
        # Due in 10 s: what has to happen before then is an API call and a terminate-and-start
        # (an earlier version tightened through the CLI, a Python start, and waited 25 s).
        at = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
        later = await agent.call_tool(
            "durable_send",
            {"mailbox": MAILBOX, "to": ["bob@example.com"], "subject": "Later", "body": "b", "send_at": at},
        )
    assert later.structured_content is not None and later.structured_content["status"] == "scheduled", later.content
    scheduled = temporal.get_workflow_handle(str(later.structured_content["send_id"]))
    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        by_human = await http.post(
            f"/api/mailboxes/{MAILBOX}/mode",
            json={"mode": "gated_send", "actor": "alice"},
            headers={"Authorization": f"Bearer {serve.token('admin')}"},
        )
    assert by_human.status_code == 200, by_human.text
    await forge_mailbox(temporal, MAILBOX, mode="autonomous", approvers=("mallory",))
    assert (await status_of(scheduled)).status == "scheduled", "the machine was too slow: forged after send_at"
    await eventually(lambda: status_is(scheduled, "pending_approval"), timeout=60, interval=0.2)
    state = await status_of(scheduled)
    [gated] = [e for e in state.events if e.kind == "gated"]
    assert "not the one mailgate's front doors set" in gated.detail, gated.detail

    # 2. Front doors go by the record too: the agent sees gated_send, a new send waits.
    assert await mode_seen_by_agent(serve, MAILBOX) == "gated_send"
    async with serve.mcp() as agent:
        sent = await agent.call_tool(
            "durable_send", {"mailbox": MAILBOX, "to": ["bob@example.com"], "subject": "Now", "body": "n"}
        )
    assert sent.structured_content is not None and sent.structured_content["status"] == "pending_approval"
    await asyncio.sleep(2)
    assert deliveries(serve) == []

    # A person's approval works (not mallory: the forged approvers list counts for nothing).
    await approve(serve, state.send_id)
    await eventually(lambda: len(deliveries(serve)) == 1)
    # A human loosening still works, and so does an agent tightening.
    assert serve.cli("mailbox", "set-mode", MAILBOX, "monitored").returncode == 0
    assert await mode_seen_by_agent(serve, MAILBOX) == "monitored"
    async with serve.mcp() as agent:
        tightened = await agent.call_tool("set_oversight_mode", {"mailbox": MAILBOX, "mode": "gated_all"})
    assert not tightened.is_error, tightened.content
    assert await mode_seen_by_agent(serve, MAILBOX) == "gated_all"


async def test_a_restart_keeps_the_record_and_existing_mailboxes_are_adopted_once(serve: Serve) -> None:
    await asyncio.to_thread(serve.start)
    assert serve.cli("mailbox", "set-mode", MAILBOX, "monitored").returncode == 0
    assert serve.stop() == 0
    # A data dir from before the record: its mailboxes are taken as they stand, once.
    (serve.data_dir / "ledger.db").unlink()
    await asyncio.to_thread(serve.start)
    assert await mode_seen_by_agent(serve, MAILBOX) == "monitored"
    temporal = await attacker_client(serve)
    await forge_mailbox(temporal, MAILBOX, mode="autonomous")
    assert serve.stop() == 0
    await asyncio.to_thread(serve.start)
    # Adopted once only: the forged workflow after that is not taken as mailgate's.
    assert await mode_seen_by_agent(serve, MAILBOX) == "monitored"


KEYS = "k1:" + base64.b64encode(bytes(range(32))).decode()


async def test_plain_payloads_are_refused_when_encryption_is_on(serve: Serve) -> None:
    serve.extra_env["MAILGATE_ENCRYPTION_KEYS"] = KEYS
    await asyncio.to_thread(serve.start)
    async with serve.mcp() as agent:
        sent = await agent.call_tool(
            "durable_send", {"mailbox": MAILBOX, "to": ["bob@example.com"], "subject": "Q3", "body": "numbers"}
        )
    assert sent.structured_content is not None, sent.content
    send_id = str(sent.structured_content["send_id"])
    # The attacker has no key: what it writes into Temporal is plain JSON.
    temporal = await attacker_client(serve)
    await temporal.get_workflow_handle(send_id).signal(
        "decide_signal", Decision(decision="approve", approver="alice", channel="api")
    )
    forged = await start_send(temporal, send_request(MAILBOX, "plain", subject="plain", body="plain"))

    async def refused() -> bool:
        kinds = [e.event_type async for e in forged.fetch_history_events()]
        return EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED in kinds

    await eventually(refused, interval=0.2)
    kinds = [e.event_type async for e in forged.fetch_history_events()]
    # Its input never reached the workflow: nothing was scheduled, it did not end.
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds, kinds
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED not in kinds, kinds
    assert "unencrypted-refused" in serve.log()
    # The send's own audit never saw the plain decision (dropped, not even refused), and it
    # still takes the real approval.
    await approve(serve, send_id)
    await eventually(lambda: len(deliveries(serve)) == 1)
    keyed = await Client.connect(
        f"127.0.0.1:{serve.temporal_port}", data_converter=data_converter(EncryptionCodec(parse_keys(KEYS)))
    )
    audit = [e.kind for e in (await status_of(keyed.get_workflow_handle(send_id))).events]
    assert "decision_refused" not in audit and audit.count("approved") == 1, audit
    assert [d["subject"] for d in deliveries(serve)] == ["Q3"]


async def test_a_notice_started_in_temporal_tells_no_human(serve: Serve, tmp_path: Path) -> None:
    config = tmp_path / "mailgate.toml"
    config.write_text(
        f'[[mailboxes]]\naddress = "{DESK}"\napprovers = ["{BOSS}"]\noversight_mode = "gated_send"\n\n'
        "[notifications]\nsandbox = true\n"
    )
    serve.extra_env["MAILGATE_CONFIG"] = str(config)
    await asyncio.to_thread(serve.start)
    async with serve.mcp() as agent:
        sent = await agent.call_tool(
            "durable_send", {"mailbox": DESK, "to": ["bob@example.com"], "subject": "Q3", "body": "numbers"}
        )
    assert sent.structured_content is not None, sent.content
    send_id = str(sent.structured_content["send_id"])

    def notices_to_boss() -> list[dict[str, Any]]:
        return [d for d in deliveries(serve) if BOSS in json.dumps(d)]

    # The real notice reaches the approver.
    await eventually(lambda: len(notices_to_boss()) == 1)
    # The attacker's: the real send's id (so the links are real) beside its own text.
    temporal = await attacker_client(serve)
    lure = EmailDraft(to=(EmailAddress(address="friend@example.com"),), subject="Birthday card", body="Happy birthday!")
    for proof in (None, "1.00ff"):
        notice = Notice(
            notice_id=f"notify-{send_id}-approval-{proof}",
            kind="approval_requested",
            mailbox=DESK,
            at=datetime.now(UTC),
            send_id=send_id,
            requester="agent",
            draft=lure,
            proof=proof,
        )
        handle = await temporal.start_workflow(NotifyWorkflow.run, notice, id=notice.notice_id, task_queue="mailgate")
        report = await asyncio.wait_for(handle.result(), 60)
        assert report.emailed == () and report.failed == (BOSS,), report
    await asyncio.sleep(1)
    assert len(notices_to_boss()) == 1
    assert "Birthday" not in json.dumps(deliveries(serve))
