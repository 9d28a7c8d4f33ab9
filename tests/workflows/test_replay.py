"""Determinism: committed histories replay against today's workflow code.

Capture new ones with MAILGATE_CAPTURE_HISTORIES=1 pytest (tests call keep_history), after a
deliberate, versioned change of workflow logic. Histories of earlier versions stay in
tests/histories/earlier/: the workflows must still replay them (workflow.patched keeps the
old paths).
"""

from __future__ import annotations

import ast
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.worker import Replayer

from tests.support.histories import FILES, HISTORIES, load, name
from workflows import patches
from workflows.models import SendRequest, SendState
from workflows.sandbox import workflow_runner
from workflows.send import SendEmailWorkflow
from workflows.temporal import data_converter
from workflows.worker import WORKFLOWS


def test_histories_are_committed() -> None:
    names = {name(path) for path in FILES}
    assert {"send-approved", "send-rejected", "send-edited", "send-cancelled", "send-blocked"} <= names
    assert {"watcher", "reply-wait-replied"} <= names
    # After notifications were added (behind a patch): sends that start a notice, and the notice itself.
    assert {"send-notified", "send-webhook-approved", "notify-approval"} <= names
    assert {"send-smtp-imap", "send-multimail-held"} <= names
    # A decision checked by its signature in the task where it arrives (signed-decisions-v1).
    assert "send-approved-signed" in names
    # A send that records one patch marker (one-marker-v1): approved and delivered; cancelled through Temporal.
    assert {
        "send-one-marker-approved",
        "send-one-marker-temporal-cancel",
        "send-one-marker-approved-in-first-task",
    } <= names
    # Every path of issue 24: scheduling, expiry, failure, re-gating, provider holds (watched,
    # cancelled, expired), sends stopped mid-wait, cancels at the edges, continue-as-new.
    assert {
        "send-scheduled",
        "send-approved-then-scheduled",
        "send-approved-at-send-time",
        "send-scheduled-cancelled",
        "send-expired",
        "send-expiry-wins",
        "send-failed",
        "send-regated",
        "send-multimail-held-watched",
        "send-multimail-held-cancelled",
        "send-multimail-held-expired",
        "send-pending-midwait",
        "send-scheduled-midwait",
        "send-multimail-held-midwait",
        "send-cancelled-before-first-task",
        "send-temporal-cancel-before-acceptance",
        "send-temporal-cancel-after-acceptance",
        "send-worker-stopped-mid-data",
        "mailbox-configured-reviewed-upgraded",
        "mailbox-upgrade-expired",
        "mailbox-continued",
        "watcher-continued",
        "reply-wait-timeout",
        "send-multimail-held-rejected",
        "send-multimail-held-webhook",
        "send-scheduled-for-approval-cancelled",
        "send-temporal-cancel-pending",
        "send-multimail-held-temporal-cancel",
    } <= names
    assert {"send-slack-expired", "slack-expired"} <= names  # a Slack round, posted then settled
    # Bulk trash: approved and carried out; forged decisions refused, then rejected; a forged request.
    assert {"trash-approved", "trash-expired", "trash-forged-decisions-then-rejected", "trash-forged-request"} <= names
    # Bulk trash told like a send (trash-notify-v1): notices and links, Slack approve and reject.
    assert {
        "trash-notified-link-approved",
        "trash-slack-approved",
        "trash-slack-rejected",
        "trash-slack-expired",
    } <= names


def patch_markers(path: Path) -> set[str]:
    """The ids of the patches a history recorded (their markers)."""
    found = set()
    for event in load(path).events:
        if event.marker_recorded_event_attributes.marker_name == "core_patch":
            [payload] = event.marker_recorded_event_attributes.details["patch-data"].payloads
            found.add(json.loads(payload.data)["id"])
    return found


def test_reject_and_cancel_histories_follow_todays_paths() -> None:
    # Recorded again after the notify patch; the ones from before it replay from earlier/.
    assert patches.NOTIFY_PATCH in patch_markers(HISTORIES / "send-rejected.json")
    assert patches.NOTIFY_PATCH in patch_markers(HISTORIES / "send-cancelled.json")
    assert not patch_markers(HISTORIES / "earlier" / "send-rejected.json")
    assert not patch_markers(HISTORIES / "earlier" / "send-cancelled.json")
    # A trash notice named by its run (trash-notice-per-run-v1); the one from before replays from earlier/.
    assert patches.TRASH_NOTICE_PER_RUN_PATCH in patch_markers(HISTORIES / "trash-notified-link-approved.json")
    assert patches.TRASH_NOTICE_PER_RUN_PATCH not in patch_markers(
        HISTORIES / "earlier" / "trash-notified-link-approved.json"
    )


PATCH_CALLS = ("workflow.patched", "workflow.deprecate_patch")


def test_every_patch_is_in_the_table_of_when_it_can_be_retired() -> None:
    workflows_dir = Path(patches.__file__).parent
    called: set[str] = set()
    for path in workflows_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in PATCH_CALLS:
                [arg] = node.args
                assert isinstance(arg, ast.Name), f"{path.name}: a patch id is a constant of workflows/patches.py"
                called.add(getattr(patches, arg.id))
    defined = {v for k, v in vars(patches).items() if k.endswith("_PATCH")}
    tabled = set(re.findall(r"^\| ([a-z0-9]+(?:-[a-z0-9]+)+) \|", patches.__doc__ or "", re.MULTILINE))
    assert called == defined == tabled


@pytest.mark.parametrize("path", FILES, ids=[name(p) for p in FILES])
async def test_history_replays_without_nondeterminism(path: Path) -> None:
    # The sandbox the worker runs: the passed-through modules must replay the same.
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(), workflow_runner=workflow_runner())
    await replayer.replay_workflow(load(path))


@workflow.defn(name="SendEmailWorkflow", sandboxed=False)
class ReorderedSendWorkflow(SendEmailWorkflow):
    """A careless change: a timer before anything else the workflow used to do."""

    @workflow.run
    async def run(self, request: SendRequest) -> SendState:
        await workflow.sleep(timedelta(seconds=1))
        return await super().run(request)


async def test_a_changed_workflow_fails_replay_so_the_test_is_not_vacuous() -> None:
    replayer = Replayer(workflows=[ReorderedSendWorkflow], data_converter=data_converter())
    result = await replayer.replay_workflow(load(HISTORIES / "send-approved.json"), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
