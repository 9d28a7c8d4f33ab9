"""A new send records one patch marker (one-marker-v1), not one per send patch: each marker comes
with a TemporalChangeVersion upsert, so every one the first task records is two more events for
the Temporal server to write and index. Histories from before it replay from their own markers
(tests/workflows/test_replay.py)."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.credentials import load_secrets
from tests.support.app import make_settings
from tests.support.histories import keep_history
from tests.support.wait import provisioned, wait_for_status
from workflows.models import Decision
from workflows.patches import ONE_MARKER_PATCH
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker

CHANGE_VERSION = "TemporalChangeVersion"


async def _events(app: Mailgate, send_id: str) -> list[HistoryEvent]:
    return [event async for event in app.client.get_workflow_handle(send_id).fetch_history_events()]


def _markers(events: list[HistoryEvent]) -> list[str]:
    found = []
    for event in events:
        if event.marker_recorded_event_attributes.marker_name == "core_patch":
            [payload] = event.marker_recorded_event_attributes.details["patch-data"].payloads
            found.append(json.loads(payload.data)["id"])
    return found


def _first_task(events: list[HistoryEvent]) -> list[HistoryEvent]:
    """The events the send's first workflow task recorded: its commands, up to the next task."""
    kinds = [e.event_type for e in events]
    start = kinds.index(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) + 1
    end = next((i for i in range(start, len(kinds)) if kinds[i] == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED), None)
    return events[start:end]


def _change_version_upserts(events: list[HistoryEvent]) -> int:
    return sum(
        1
        for e in events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
        and CHANGE_VERSION in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    )


async def test_a_new_send_records_one_patch_marker_from_start_to_delivery(app: Mailgate) -> None:
    sent = await app.sends.submit(mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject="s", body="b")
    await wait_for_status(app, sent.send_id, {"pending_approval"})
    first = _first_task(await _events(app, sent.send_id))
    # The marker, its upsert and the approval timer: nothing else on the way to pending_approval.
    assert _markers(first) == [ONE_MARKER_PATCH]
    assert _change_version_upserts(first) == 1
    assert [EventType.Name(e.event_type) for e in first][-1] == "EVENT_TYPE_TIMER_STARTED"
    assert len(first) == 3

    state = await app.sends.decide(sent.send_id, Decision(decision="approve", approver="alice"))
    assert state.status == "sending"
    await wait_for_status(app, sent.send_id, {"sent"})
    events = await _events(app, sent.send_id)
    # Signed decision, admission with delivery: their patches' new branches, without their markers.
    assert _markers(events) == [ONE_MARKER_PATCH]
    assert _change_version_upserts(events) == 1
    await keep_history(app, sent.send_id, "send-one-marker-approved")


async def test_a_new_send_cancelled_through_temporal_ends_cancelled_without_another_marker(app: Mailgate) -> None:
    sent = await app.sends.submit(mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject="s", body="b")
    await wait_for_status(app, sent.send_id, {"pending_approval"})
    await app.client.get_workflow_handle(sent.send_id).cancel()
    state = await wait_for_status(app, sent.send_id, {"cancelled"})
    assert state.reason == "cancelled through Temporal"  # temporal-cancel-ends-cancelled-v1's branch
    assert _markers(await _events(app, sent.send_id)) == [ONE_MARKER_PATCH]
    await keep_history(app, sent.send_id, "send-one-marker-temporal-cancel")


async def test_a_decision_that_comes_with_a_new_sends_first_task_is_checked_there_without_another_marker(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The decision's handler runs before run() in that task: the marker is asked before either."""
    settings = make_settings(temporal_env, tmp_path)
    secrets = load_secrets(settings)
    app = Mailgate.build(settings, temporal_env.client, secrets)

    async with build_worker(
        temporal_env.client, settings.task_queue, app.providers, proof_key=proof_key(secrets.secret_key)
    ):
        await app.mailboxes.create(settings.default_mailbox, created_by="tests")
        await provisioned(app, settings.default_mailbox)
    # No worker now: the decision is stored beside the start, and both come in the first task.
    sent = await app.sends.submit(mailbox=settings.default_mailbox, to=["bob@example.com"], subject="s", body="b")
    decision = Decision(decision="approve", approver="alice", decision_id="first-task")
    assert await app.sends.signal_decision(sent.send_id, decision) == "accepted"
    async with build_worker(
        temporal_env.client, settings.task_queue, app.providers, proof_key=proof_key(secrets.secret_key)
    ):
        await wait_for_status(app, sent.send_id, {"sent"})
        events = await _events(app, sent.send_id)
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ]
        assert scheduled == ["admit_and_deliver"]  # the signature, not the check_proof activity
        assert _markers(events) == [ONE_MARKER_PATCH]
        await keep_history(app, sent.send_id, "send-one-marker-approved-in-first-task")
