"""NotifyWorkflow: tell the humans about one notice, retrying with backoff until it lands.

Started as an abandoned child of the send (or by a front door), with an id derived from what
it tells, so each notice goes out once however often it is started. Temporal owns the retries:
a worker that restarts mid-way picks up where the last one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from workflows.activities.notify import NotifyActivities
    from workflows.notices import Notice, NoticeReport

# 1 s, 3 s, 9 s ... up to 10 minutes apart, for a day: enough to ride out a receiver's outage.
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=3.0, maximum_interval=timedelta(minutes=10)
)
NOTIFY_DEADLINE = timedelta(days=1)


@workflow.defn
class NotifyWorkflow:
    @workflow.run
    async def run(self, notice: Notice) -> NoticeReport:
        try:
            recipients = await workflow.execute_activity_method(
                NotifyActivities.notice_recipients,
                notice,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(hours=1),
                retry_policy=NOTIFY_RETRY,
            )
        except ActivityError as err:
            workflow.logger.warning("no recipients for %s: %s", notice.notice_id, err.cause or err)
            recipients = []
        webhook, *emails = await asyncio.gather(
            self._attempt(
                workflow.execute_activity_method(
                    NotifyActivities.post_webhook,
                    notice,
                    start_to_close_timeout=timedelta(seconds=30),
                    schedule_to_close_timeout=NOTIFY_DEADLINE,
                    retry_policy=NOTIFY_RETRY,
                )
            ),
            *(
                self._attempt(
                    workflow.execute_activity_method(
                        NotifyActivities.email_notice,
                        args=[notice, recipient],
                        start_to_close_timeout=timedelta(minutes=2),
                        # It heartbeats while it sends: a dead worker is noticed in seconds, and
                        # the retry finds the email by its Message-ID instead of sending it again.
                        heartbeat_timeout=timedelta(seconds=10),
                        schedule_to_close_timeout=NOTIFY_DEADLINE,
                        retry_policy=NOTIFY_RETRY,
                    )
                )
                for recipient in recipients
            ),
        )
        return NoticeReport(
            notice_id=notice.notice_id,
            webhook=webhook,
            emailed=tuple(r for r, outcome in zip(recipients, emails, strict=True) if not outcome.startswith("failed")),
            failed=tuple(r for r, outcome in zip(recipients, emails, strict=True) if outcome.startswith("failed")),
        )

    @staticmethod
    async def _attempt(call: Awaitable[str]) -> str:
        """The outcome as text: one channel that gave up must not stop the others."""
        try:
            return await call
        except ActivityError as err:
            cause = err.cause
            return f"failed: {cause.message if isinstance(cause, ApplicationError) else cause or err}"


async def start_notice(notice: Notice, summary: str) -> None:
    """From a workflow (a send, a trash request): start the notice as an abandoned child, so it
    outlives its starter; already started (a reset replayed this step), once is enough."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await workflow.start_child_workflow(
            NotifyWorkflow.run,
            notice,
            id=notice.notice_id,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            static_summary=summary,
        )
