"""MailboxWorkflow on the time-skipping server: codes expire, history stays bounded."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from tests.support.histories import keep_history
from tests.support.mailbox import start_mailbox
from tests.support.proofs import TEST_PROOF_KEY
from workflows.ids import mailbox_workflow_id
from workflows.mailbox import MailboxWorkflow
from workflows.mailbox_models import UpgradeAsk, UpgradeRedeem
from workflows.models import AdmitRequest, EmailAddress
from workflows.providers.base import ProviderSet
from workflows.providers.fake import FakeProvider
from workflows.worker import build_worker


async def test_an_upgrade_code_expires_after_24_hours(skipping_env: WorkflowEnvironment) -> None:
    queue = f"tq-{uuid.uuid4().hex}"
    async with build_worker(skipping_env.client, queue, ProviderSet(FakeProvider()), proof_key=TEST_PROOF_KEY):
        _, handle = await start_mailbox(skipping_env, queue)
        ask = UpgradeAsk(request_id="r1", mode="autonomous", reason="x", requested_by="agent")
        await handle.execute_update(MailboxWorkflow.request_upgrade, ask)
        await skipping_env.sleep(timedelta(hours=24, minutes=1))
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(MailboxWorkflow.redeem_upgrade, UpgradeRedeem(request_id="r1", actor="agent"))
        state = await handle.query(MailboxWorkflow.describe)
        assert state.config.mode == "gated_send"
        assert [u.status for u in state.upgrades] == ["pending"]
        await keep_history(skipping_env.client, handle.id, "mailbox-upgrade-expired")
        # The workflow writes "expired" only when a code is next presented; readers see it at once.
        now = await skipping_env.get_current_time()
        assert [u.as_of(now).status for u in state.upgrades] == ["expired"]
        assert [u.as_of(now - timedelta(minutes=2)).status for u in state.upgrades] == ["pending"]


async def test_a_rate_limit_slot_opens_again_after_the_hour(skipping_env: WorkflowEnvironment) -> None:
    queue = f"tq-{uuid.uuid4().hex}"
    async with build_worker(skipping_env.client, queue, ProviderSet(FakeProvider()), proof_key=TEST_PROOF_KEY):
        _, handle = await start_mailbox(skipping_env, queue, mode="autonomous", rate_per_hour=1)
        to = (EmailAddress(address="b@example.com"),)
        first = await handle.execute_update(
            MailboxWorkflow.admit, AdmitRequest(send_id="s1", recipients=to, approved_by=None)
        )
        second = await handle.execute_update(
            MailboxWorkflow.admit, AdmitRequest(send_id="s2", recipients=to, approved_by=None)
        )
        assert (first.outcome, second.outcome) == ("ok", "blocked")
        again = await handle.execute_update(
            MailboxWorkflow.admit, AdmitRequest(send_id="s1", recipients=to, approved_by=None)
        )
        assert again.outcome == "ok"  # a retried admission of the same send counts once
        await skipping_env.sleep(timedelta(minutes=61))
        third = await handle.execute_update(
            MailboxWorkflow.admit, AdmitRequest(send_id="s3", recipients=to, approved_by=None)
        )
        assert third.outcome == "ok"


async def test_the_daily_rate_limit_holds_for_a_day_not_an_hour(skipping_env: WorkflowEnvironment) -> None:
    queue = f"tq-{uuid.uuid4().hex}"
    async with build_worker(skipping_env.client, queue, ProviderSet(FakeProvider()), proof_key=TEST_PROOF_KEY):
        _, handle = await start_mailbox(skipping_env, queue, mode="autonomous", rate_per_day=2)
        to = (EmailAddress(address="b@example.com"),)

        async def admit(send_id: str) -> str:
            admission = await handle.execute_update(
                MailboxWorkflow.admit, AdmitRequest(send_id=send_id, recipients=to, approved_by=None)
            )
            return f"{admission.outcome} {admission.reason}".strip()

        assert [await admit("s1"), await admit("s2")] == ["ok", "ok"]
        assert (await admit("s3")).startswith("blocked rate limit reached: 2 sends per day")
        await skipping_env.sleep(timedelta(hours=2))
        assert (await admit("s4")).startswith("blocked rate limit reached: 2 sends per day")
        await skipping_env.sleep(timedelta(hours=22, minutes=1))
        assert await admit("s5") == "ok"


async def test_the_mailbox_continues_as_new_and_keeps_its_state(skipping_env: WorkflowEnvironment) -> None:
    queue = f"tq-{uuid.uuid4().hex}"
    async with build_worker(skipping_env.client, queue, ProviderSet(FakeProvider()), proof_key=TEST_PROOF_KEY):
        address, handle = await start_mailbox(skipping_env, queue, mode="monitored")
        to = (EmailAddress(address="b@example.com"),)
        for i in range(450):
            await handle.execute_update(
                MailboxWorkflow.admit, AdmitRequest(send_id=f"s{i}", recipients=to, approved_by=None)
            )
        described = await skipping_env.client.get_workflow_handle(mailbox_workflow_id(address)).describe()
        assert described.run_id != handle.result_run_id
        state = await skipping_env.client.get_workflow_handle(mailbox_workflow_id(address)).query(
            MailboxWorkflow.describe
        )
        assert len(state.reviews) == 450
        assert state.config.mode == "monitored"
        first = handle.result_run_id
        await keep_history(skipping_env.client, mailbox_workflow_id(address), "mailbox-continued", run_id=first)
