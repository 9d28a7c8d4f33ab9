"""The Temporal worker: every workflow and activity of mailgate on one task queue."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from workflows.activities.inbox import InboxActivities
from workflows.activities.notify import NotifyActivities, NotifyConfig
from workflows.activities.proofs import ProofActivities
from workflows.activities.send import MailActivities
from workflows.activities.slack import SlackActivities, SlackConfig
from workflows.activities.trash import TrashActivities
from workflows.mailbox import MailboxWorkflow
from workflows.notify import NotifyWorkflow
from workflows.providers.base import ProviderSet
from workflows.reply_wait import ReplyWaitWorkflow
from workflows.sandbox import workflow_runner
from workflows.send import SendEmailWorkflow
from workflows.slack import SlackWorkflow
from workflows.trash_approval import BulkTrashWorkflow
from workflows.trust.ledger import LocalLedger
from workflows.watcher import MailboxWatcherWorkflow

# On shutdown, activities in flight get this long to finish before they are cancelled: a delivery
# that began is never cut (its activity finishes the hand-over even then); this lets it report.
GRACEFUL_SHUTDOWN = timedelta(seconds=30)

WORKFLOWS = [
    SendEmailWorkflow,
    MailboxWorkflow,
    MailboxWatcherWorkflow,
    ReplyWaitWorkflow,
    NotifyWorkflow,
    SlackWorkflow,
    BulkTrashWorkflow,
]


def build_worker(
    client: Client,
    task_queue: str,
    providers: ProviderSet,
    notify: NotifyConfig | None = None,
    cached_workflows: int = 100,
    *,
    proof_key: bytes,
    slack: SlackConfig | None = None,
    ledger: LocalLedger | None = None,
) -> Worker:
    """A worker for every mailgate workflow; without ``notify``, notices are recorded but not sent.

    ``cached_workflows`` bounds memory: each cached workflow holds its own sandboxed copy of its
    modules (about 115 KB of the worker's RSS per cached send here), while a send waiting days
    for a human needs no cache at all; an evicted one is rebuilt from its short history when its
    decision comes. With thousands waiting, most sends a human approves are out of any cache of a
    size that fits in memory, so a larger one buys little speed; 100 keeps the mailbox workflows
    and the sends busy at once (the approval-cycle benchmark keeps 20 in flight).

    ``proof_key`` (``proofs.proof_key`` of the server's secret key) checks that requests,
    decisions and loosenings came through mailgate's front doors; it never enters a payload.
    ``ledger`` (``workflows.trust.ledger.open_ledger`` of the data dir the front doors use) holds the
    sends handed over and the mailbox configurations the front doors set: without it (tests that
    start workflows by hand), a send re-run in Temporal or a forged mailbox workflow is not caught.
    """
    activities = MailActivities(client, providers, proof_key, ledger)
    proofs = ProofActivities(proof_key)
    inbox = InboxActivities(client, providers)
    notices = NotifyActivities(client, providers, notify, proof_key, ledger)
    slack_activities = SlackActivities(slack)
    trash = TrashActivities(client, providers, proof_key, ledger)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=[
            activities.admit,
            activities.admit_and_deliver,
            activities.deliver,
            activities.provision,
            activities.held_outcome,
            activities.watch_held,
            activities.cancel_held,
            inbox.scan,
            inbox.dispatch,
            inbox.watch,
            inbox.unwatch,
            notices.notice_recipients,
            notices.email_notice,
            notices.post_webhook,
            proofs.check_proof,
            slack_activities.post_slack,
            slack_activities.update_slack,
            trash.trash_emails,
        ],
        # If the worker holding a workflow's cached state dies, another takes over sooner.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        max_cached_workflows=cached_workflows,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )
