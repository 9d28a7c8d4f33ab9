"""The Slack round of a send: Slack's failures never reach the send; expiry updates the message."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.credentials import load_secrets
from server.notifications import slack_config
from server.settings import MailboxEntry
from tests.support.app import make_settings, record_sends, unique_mailbox
from tests.support.histories import HISTORIES
from tests.support.peers.slack_fake import BOT_TOKEN, CHANNEL, SIGNING_SECRET, SlackServer
from tests.support.proofs import TEST_PROOF_KEY
from tests.support.wait import wait_for_status
from workflows import ids
from workflows.activities.slack import SlackConfig
from workflows.models import Decision, DeliveryRequest, EmailAddress, EmailDraft, MailboxPolicy, SendRequest
from workflows.providers.base import ProviderSet
from workflows.providers.fake import FakeProvider
from workflows.send import SendEmailWorkflow
from workflows.slack_client.message import SlackReport
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker


def request(channel: str, hours: float = 72.0) -> SendRequest:
    send_id = ids.send_id("agent@mailgate.local", uuid.uuid4().hex)
    draft = EmailDraft(
        to=(EmailAddress(address="bob@example.com"),),
        bcc=(EmailAddress(address="audit@example.com"),),
        subject="Quarterly numbers",
        body="See attached.",
    )
    return SendRequest(
        send_id=send_id,
        mailbox="agent@mailgate.local",
        requester="agent",
        draft=draft,
        message_id=ids.message_id(send_id, "agent@mailgate.local"),
        content_hash=ids.content_hash(draft),
        policy=MailboxPolicy(mode="gated_send", approvers=("alice@example.com",)),
        requested_at=datetime.now(UTC),
        approval_timeout=timedelta(hours=hours),
        slack_channel=channel,
    )


async def keep(client: Client, workflow_id: str, name: str) -> None:
    """Save a finished history for the replay test (with MAILGATE_CAPTURE_HISTORIES=1)."""
    if os.environ.get("MAILGATE_CAPTURE_HISTORIES") == "1":
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json())


async def slack_report(client: Client, send_id: str) -> SlackReport:
    """The round's report, waiting first for the send to start it (a child starts a moment later)."""
    handle: WorkflowHandle[Any, SlackReport] = client.get_workflow_handle(f"slack-{send_id}-1", result_type=SlackReport)
    for _ in range(200):
        try:
            return await handle.result()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.05)
    raise AssertionError(f"no Slack round for {send_id}")


async def test_a_slack_that_refuses_never_blocks_or_fails_the_send(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    slack = SlackServer().start()
    settings = make_settings(
        temporal_env,
        tmp_path,
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_api_url=slack.api_url,
    )
    secrets = load_secrets(settings)
    app = Mailgate.build(settings, temporal_env.client, secrets)
    outbox: list[DeliveryRequest] = []
    record_sends(app.providers, outbox)
    box = unique_mailbox()
    # Slack answers channel_not_found: no retry can fix it.
    entry = MailboxEntry(address=box, approvers=["alice@example.com"], slack_channel="C0NOSUCHCHANNEL")
    try:
        async with build_worker(
            temporal_env.client,
            settings.task_queue,
            app.providers,
            slack=slack_config(settings),
            proof_key=proof_key(secrets.secret_key),
        ):
            await app.mailboxes.ensure(entry, created_by="tests")
            send = await app.sends.submit(mailbox=box, to=["bob@example.com"], subject="Numbers", body="b")
            report = await slack_report(temporal_env.client, send.send_id)
            assert report.posted is None and "channel_not_found" in report.error
            await app.sends.decide(send.send_id, Decision(decision="approve", approver="alice@example.com"))
            state = await wait_for_status(app, send.send_id, ["sent", "failed", "blocked"])
        assert state.status == "sent"
        assert len(outbox) == 1
        assert [name for name, _ in slack.fake.calls] == ["chat.postMessage"]
    finally:
        slack.stop()


async def test_an_expired_send_updates_its_slack_message(skipping_env: WorkflowEnvironment) -> None:
    slack = SlackServer().start()
    queue = f"tq-{uuid.uuid4().hex}"
    config = SlackConfig(base_url="http://127.0.0.1:8025", bot_token=BOT_TOKEN, api_url=slack.api_url)
    req = request(CHANNEL, hours=1.0)
    client = skipping_env.client
    try:
        async with build_worker(client, queue, ProviderSet(FakeProvider()), slack=config, proof_key=TEST_PROOF_KEY):
            state = await client.execute_workflow(SendEmailWorkflow.run, req, id=req.send_id, task_queue=queue)
            report = await slack_report(client, req.send_id)
        assert state.status == "expired"
        assert report.updated and report.outcome is not None and report.outcome.status == "expired"
        # Told by the send when it expired, not found out by the round's own margin an hour later.
        assert report.outcome.at == next(e.at for e in state.events if e.kind == "expired")
        [(_, ts)] = slack.fake.messages
        shown = json.dumps(slack.fake.message(ts)["blocks"])
        assert "Expired" in shown and '"actions"' not in shown
        await keep(client, req.send_id, "send-slack-expired")
        await keep(client, f"slack-{req.send_id}-1", "slack-expired")
    finally:
        slack.stop()


async def test_a_cancel_through_temporal_updates_the_slack_message(temporal_env: WorkflowEnvironment) -> None:
    slack = SlackServer().start()
    queue = f"tq-{uuid.uuid4().hex}"
    config = SlackConfig(base_url="http://127.0.0.1:8025", bot_token=BOT_TOKEN, api_url=slack.api_url)
    req = request(CHANNEL)
    client = temporal_env.client
    try:
        async with build_worker(client, queue, ProviderSet(FakeProvider()), slack=config, proof_key=TEST_PROOF_KEY):
            handle = await client.start_workflow(SendEmailWorkflow.run, req, id=req.send_id, task_queue=queue)
            for _ in range(200):
                if slack.fake.messages:
                    break
                await asyncio.sleep(0.05)
            await handle.cancel()
            state = await handle.result()
            report = await slack_report(client, req.send_id)
        assert state.status == "cancelled"
        assert report.outcome is not None and report.outcome.status == "cancelled"
        [(_, ts)] = slack.fake.messages
        assert "Cancelled" in json.dumps(slack.fake.message(ts)["blocks"])
    finally:
        slack.stop()
