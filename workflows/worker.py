"""The Temporal worker: every workflow and activity of mailgate on one task queue."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from workflows.activities import MailActivities
from workflows.inbox_activities import InboxActivities
from workflows.mailbox import MailboxWorkflow
from workflows.providers.base import ProviderSet
from workflows.reply_wait import ReplyWaitWorkflow
from workflows.send import SendEmailWorkflow
from workflows.watcher import MailboxWatcherWorkflow

WORKFLOWS = [SendEmailWorkflow, MailboxWorkflow, MailboxWatcherWorkflow, ReplyWaitWorkflow]


def build_worker(client: Client, task_queue: str, providers: ProviderSet) -> Worker:
    activities = MailActivities(client, providers)
    inbox = InboxActivities(client, providers)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[
            activities.admit,
            activities.deliver,
            activities.provision,
            inbox.scan,
            inbox.dispatch,
            inbox.watch,
            inbox.unwatch,
        ],
        # If the worker holding a workflow's cached state dies, another takes over sooner.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
    )
