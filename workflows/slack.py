"""SlackWorkflow: one approval round of a send in Slack — post the message, then update it in place.

Started by the send as an abandoned child when its mailbox has a ``slack_channel``; the send
signals ``settle`` once decided (from any channel), expired or cancelled. Slack's failures stay
here: they retry with backoff and, at worst, end this workflow, never the send.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from workflows.activities.slack import SlackActivities
    from workflows.notify import NOTIFY_RETRY
    from workflows.slack_client.message import SlackOutcome, SlackPosted, SlackReport, SlackRequest

# A send is settled by its own expiry; this margin only ends a round whose send never said so.
SETTLE_MARGIN = timedelta(hours=1)
UPDATE_DEADLINE = timedelta(days=1)


@workflow.defn
class SlackWorkflow:
    def __init__(self) -> None:
        self._outcome: SlackOutcome | None = None

    @workflow.run
    async def run(self, request: SlackRequest) -> SlackReport:
        window = max(request.expires_at - workflow.now(), timedelta(minutes=1))
        try:
            posted: SlackPosted = await workflow.execute_activity_method(
                SlackActivities.post_slack,
                request,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=window,
                retry_policy=NOTIFY_RETRY,
            )
        except ActivityError as err:
            return SlackReport(outcome=self._outcome, error=f"post failed: {err.cause or err}")
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._outcome is not None, timeout=window + SETTLE_MARGIN, timeout_summary="send decided"
            )
        outcome = self._outcome or SlackOutcome(status="expired", by="mailgate", at=workflow.now())
        try:
            await workflow.execute_activity_method(
                SlackActivities.update_slack,
                args=[request, posted, outcome],
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=UPDATE_DEADLINE,
                retry_policy=NOTIFY_RETRY,
            )
        except ActivityError as err:
            return SlackReport(posted=posted, outcome=outcome, error=f"update failed: {err.cause or err}")
        return SlackReport(posted=posted, outcome=outcome, updated=True)

    @workflow.signal
    def settle(self, outcome: SlackOutcome) -> None:
        if self._outcome is None:  # the first word is the send's final one for this round
            self._outcome = outcome


async def post_message(message: SlackRequest, slack_id: str) -> None:
    """From a workflow (a send's round, a trash request): post its Slack message as an abandoned
    child, so it outlives its starter; already started (a reset replayed this step), once is enough."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await workflow.start_child_workflow(
            SlackWorkflow.run,
            message,
            id=slack_id,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            static_summary=f"Slack message for {message.send_id}",
        )


async def settle_message(slack_id: str, outcome: SlackOutcome) -> None:
    """Tell a Slack message how its request ended; a message that is gone changes nothing."""
    with contextlib.suppress(FailureError):
        await workflow.get_external_workflow_handle(slack_id).signal(SlackWorkflow.settle, outcome)
