"""A bulk trash nobody decides expires with the approval window (time-skipping: 72 hours pass in
moments), durably waiting until then, and nothing is trashed; its Slack message then says so."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from server.trash_approvals import trash_id
from tests.support.histories import keep_history
from tests.support.peers.slack_fake import BOT_TOKEN, CHANNEL, SlackServer
from tests.support.proofs import TEST_PROOF_KEY
from workflows.activities.slack import SlackConfig
from workflows.providers.base import ProviderSet
from workflows.providers.fake import FakeProvider
from workflows.slack import SlackWorkflow
from workflows.trash_approval import BulkTrashWorkflow, TrashRequest
from workflows.trust.proofs import fields_of, sign
from workflows.worker import build_worker


async def test_an_undecided_bulk_trash_expires_and_trashes_nothing(quiet_skipping_env: WorkflowEnvironment) -> None:
    provider = FakeProvider()
    queue = f"tq-{uuid.uuid4().hex}"
    request_id = trash_id("agent@mailgate.local", [str(n) for n in range(11)])
    # A skipping server of its own (the session's runs every timer earlier tests left behind when
    # it skips three days); the request is made at that server's now.
    now = await quiet_skipping_env.get_current_time()
    request = TrashRequest(
        request_id=request_id,
        mailbox="agent@mailgate.local",
        email_ids=tuple(str(n) for n in range(11)),
        requester="agent",
        mode="gated_send",
        requested_at=now,
        approval_timeout=timedelta(hours=72),
    )
    request = request.model_copy(update={"proof": sign(TEST_PROOF_KEY, "request", request_id, fields_of(request), now)})
    async with build_worker(quiet_skipping_env.client, queue, ProviderSet(provider), proof_key=TEST_PROOF_KEY):
        started = await quiet_skipping_env.get_current_time()
        state = await quiet_skipping_env.client.execute_workflow(
            BulkTrashWorkflow.run, request, id=request_id, task_queue=queue
        )
        waited = await quiet_skipping_env.get_current_time() - started
        await keep_history(quiet_skipping_env.client, request_id, "trash-expired")
    assert state.status == "expired" and "nothing was trashed" in state.reason
    assert state.expires_at is None and state.outcomes == ()
    assert waited >= timedelta(hours=71)


async def test_an_expired_bulk_trash_settles_its_slack_message(quiet_skipping_env: WorkflowEnvironment) -> None:
    env = quiet_skipping_env
    queue = f"tq-{uuid.uuid4().hex}"
    ids = tuple(f"s{n}" for n in range(11))
    request_id = trash_id("agent@mailgate.local", list(ids))
    now = await env.get_current_time()
    request = TrashRequest(
        request_id=request_id,
        mailbox="agent@mailgate.local",
        email_ids=ids,
        requester="agent",
        mode="gated_send",
        requested_at=now,
        approval_timeout=timedelta(hours=72),
        slack_channel=CHANNEL,
    )
    request = request.model_copy(update={"proof": sign(TEST_PROOF_KEY, "request", request_id, fields_of(request), now)})
    slack = SlackServer().start()
    config = SlackConfig(base_url="http://127.0.0.1:8025", bot_token=BOT_TOKEN, api_url=slack.api_url)
    try:
        async with build_worker(env.client, queue, ProviderSet(FakeProvider()), slack=config, proof_key=TEST_PROOF_KEY):
            state = await env.client.execute_workflow(BulkTrashWorkflow.run, request, id=request_id, task_queue=queue)
            slack_run = env.client.get_workflow_handle_for(SlackWorkflow.run, f"slack-{request_id}")
            report = await slack_run.result()
            await keep_history(env.client, request_id, "trash-slack-expired")
    finally:
        slack.stop()
    assert state.status == "expired"
    assert report.updated and report.outcome is not None and report.outcome.status == "expired", report
    [message] = slack.fake.messages.values()
    assert "Expired" in str(message["blocks"]) and "11" in str(message["blocks"])
