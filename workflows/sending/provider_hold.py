"""A send its provider holds for the provider's own human (a gated MultiMail mailbox): waiting
for that decision, cancelling at the provider, and ending the send as the provider says."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from workflows.activities.send import MailActivities
    from workflows.models import DeliveryReceipt, HeldOutcome, SendState
    from workflows.patches import HELD_EXPIRY_PATCH, PROVIDER_WATCH_PATCH

from workflows.sending.options import HELD_DEADLINE, HELD_MARGIN, HELD_RETRY, failure
from workflows.sending.record import SendRecord


class ProviderHold(SendRecord):
    """The provider holds the email for its own human; the send waits for that decision."""

    async def _await_provider(self, receipt: DeliveryReceipt) -> SendState:
        """The provider holds the email for its own human: wait for that decision.

        A webhook (a ``decide_signal`` from channel ``multimail``) only wakes this loop; the
        outcome is always read back from the provider, so a webhook cannot make a send "sent"
        that the provider did not send. Without webhooks, the loop asks every ``recheck_after``.
        """
        pending_id = receipt.provider_id
        self._held_by_provider = pending_id
        every = receipt.recheck_after or timedelta(minutes=5)
        window = self._request.approval_timeout
        self._expires_at = workflow.now() + window
        self._set_status("pending_approval")
        self._event("held_by_provider", "provider", f"pending id {pending_id}: its human decides")
        if self._current or workflow.patched(PROVIDER_WATCH_PATCH):
            return await self._watch_provider(receipt, every)
        while True:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._provider_reported or self._cancelled_by is not None,
                    timeout=every,
                    timeout_summary="provider decision",
                )
            self._provider_reported = False
            if self._cancelled_by is not None:
                outcome = await self._held_activity(MailActivities.cancel_held, pending_id)
                if outcome.status == "cancelled":
                    return self._finish("cancelled", f"cancelled by {self._cancelled_by}")
                self._cancelled_by = None  # too late: the provider's human decided already
            else:
                outcome = await self._held_activity(MailActivities.held_outcome, pending_id)
            if outcome.status == "pending":
                if workflow.now() < self._expires_at:
                    continue
                late = await self._held_activity(MailActivities.cancel_held, pending_id)
                # The provider's human may have decided after the last look: the cancel's answer says.
                if late.status in ("pending", "cancelled") or not (
                    self._current or workflow.patched(HELD_EXPIRY_PATCH)
                ):
                    hours = window.total_seconds() / 3600
                    return self._finish("expired", f"the provider's human did not decide within {hours:g} hours")
                outcome = late
            return self._held_ended(receipt, outcome)

    async def _watch_provider(self, receipt: DeliveryReceipt, every: timedelta) -> SendState:
        """provider-hold-v2: one activity polls the provider until its human decides or the window
        ends, heartbeating; the history grows by a few events per watch, not per poll. A webhook
        (or a cancel) stops the watch; the next one looks at once."""
        pending_id = receipt.provider_id
        assert self._expires_at is not None
        while True:
            self._provider_reported = False
            left = max(self._expires_at - workflow.now(), timedelta(0))
            watch = workflow.start_activity_method(
                MailActivities.watch_held,
                args=[self._request.mailbox, pending_id, every.total_seconds(), self._expires_at],
                start_to_close_timeout=left + HELD_MARGIN,
                schedule_to_close_timeout=left + HELD_MARGIN,
                heartbeat_timeout=timedelta(minutes=1),
                retry_policy=HELD_RETRY,
                summary="provider decision",
            )
            await workflow.wait_condition(functools.partial(self._watch_ended, watch))
            if not watch.done():
                watch.cancel()
                with contextlib.suppress(ActivityError, CancelledError):
                    await watch
                if self._cancelled_by is None:
                    continue  # a webhook: look again now
                outcome = await self._held_activity(MailActivities.cancel_held, pending_id)
                if outcome.status == "cancelled":
                    return self._finish("cancelled", f"cancelled by {self._cancelled_by}")
                self._cancelled_by = None  # too late: the provider's human decided already
            else:
                try:
                    outcome = watch.result()
                except ActivityError as err:
                    outcome = HeldOutcome(status="failed", detail=failure(err))
            if outcome.status == "pending":
                if workflow.now() < self._expires_at:
                    continue
                late = await self._held_activity(MailActivities.cancel_held, pending_id)
                # The provider's human may have decided after the last look: the cancel's answer says.
                if late.status in ("pending", "cancelled"):
                    hours = self._request.approval_timeout.total_seconds() / 3600
                    return self._finish("expired", f"the provider's human did not decide within {hours:g} hours")
                outcome = late
            return self._held_ended(receipt, outcome)

    def _held_ended(self, receipt: DeliveryReceipt, outcome: HeldOutcome) -> SendState:
        """The provider's human decided (or the provider failed): the send ends as the provider says."""
        assert outcome.status != "pending"  # the loops wait on while it is
        self._held_by_provider = None
        if outcome.status == "sent":
            self._delivered_at = workflow.now()
            return self._finish("sent", f"{outcome.detail}; delivered as {receipt.message_id}")
        return self._finish(outcome.status, outcome.detail)

    def _watch_ended(self, watch: workflow.ActivityHandle[HeldOutcome]) -> bool:
        return watch.done() or self._provider_reported or self._cancelled_by is not None

    async def _held_activity(
        self, activity: Callable[[MailActivities, str, str], Awaitable[HeldOutcome]], pending_id: str
    ) -> HeldOutcome:
        try:
            outcome = await workflow.execute_activity_method(
                activity,
                args=[self._request.mailbox, pending_id],
                start_to_close_timeout=timedelta(minutes=1),
                # An overall deadline: a provider that stays unreachable ends the send as failed.
                schedule_to_close_timeout=HELD_DEADLINE,
                retry_policy=HELD_RETRY,
            )
        except ActivityError as err:
            return HeldOutcome(status="failed", detail=failure(err))
        return outcome
