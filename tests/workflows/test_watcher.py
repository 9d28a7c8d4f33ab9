"""MailboxWatcherWorkflow on the time-skipping server: its history stays bounded, its state does not get lost."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from tests.support.histories import keep_history
from tests.support.proofs import TEST_PROOF_KEY
from workflows.providers.base import ProviderSet
from workflows.providers.fake import FakeProvider
from workflows.read_models import Watch, WatcherState
from workflows.watcher import HISTORY_LIMIT, MailboxWatcherWorkflow
from workflows.worker import build_worker


async def test_the_watcher_continues_as_new_and_carries_its_cursor_and_waits(
    quiet_skipping_env: WorkflowEnvironment,
) -> None:
    queue = f"tq-{uuid.uuid4().hex}"
    state = WatcherState(
        mailbox=f"box-{uuid.uuid4().hex[:8]}@mailgate.local",
        cursor="c-42",
        watches=(Watch(wait_id="wait-1", message_id="<asked@mailgate.local>"),),
        poll_interval=timedelta(minutes=5),
    )
    async with build_worker(quiet_skipping_env.client, queue, ProviderSet(FakeProvider()), proof_key=TEST_PROOF_KEY):
        handle = await quiet_skipping_env.client.start_workflow(
            MailboxWatcherWorkflow.run, state, id=f"watch-{uuid.uuid4().hex}", task_queue=queue
        )
        first_run = handle.result_run_id
        # Each poll is a timer and a scan; skipping a day of polls pushes the history past its limit.
        # Skipped in steps of 6 hours: one RPC skipping two days of polls can outlast its timeout.
        latest = quiet_skipping_env.client.get_workflow_handle(handle.id)
        for _ in range(8):
            await quiet_skipping_env.sleep(timedelta(hours=6))
            description = await latest.describe()
            if description.run_id != first_run:
                break
        assert description.run_id != first_run
        # The history of the first run ended with continue-as-new near the limit, not far past it.
        events = [
            e
            async for e in quiet_skipping_env.client.get_workflow_handle(
                handle.id, run_id=first_run
            ).fetch_history_events()
        ]
        assert HISTORY_LIMIT <= len(events) < HISTORY_LIMIT + 50
        assert events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
        carried = await latest.query(MailboxWatcherWorkflow.describe)
        assert carried == state
        await keep_history(quiet_skipping_env.client, handle.id, "watcher-continued", run_id=first_run)
