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


async def await_provider(send: SendRecord, receipt: DeliveryReceipt) -> SendState:
    """The provider holds the email for its own human: wait for that decision.

    A webhook (a ``decide_signal`` from channel ``multimail``) only wakes this loop; the
    outcome is always read back from the provider, so a webhook cannot make a send "sent"
    that the provider did not send. Without webhooks, the loop asks every ``recheck_after``.
    """
    pending_id = receipt.provider_id
    send._held_by_provider = pending_id
    every = receipt.recheck_after or timedelta(minutes=5)
    window = send._request.approval_timeout
    send._expires_at = workflow.now() + window
    send._set_status("pending_approval")
    send._event("held_by_provider", "provider", f"pending id {pending_id}: its human decides")
    if send._current or workflow.patched(PROVIDER_WATCH_PATCH):
        return await watch_provider(send, receipt, every)
    while True:
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: send._provider_reported or send._cancelled_by is not None,
                timeout=every,
                timeout_summary="provider decision",
            )
        send._provider_reported = False
        if send._cancelled_by is not None:
            outcome = await held_activity(send, MailActivities.cancel_held, pending_id)
            if outcome.status == "cancelled":
                return send._finish("cancelled", f"cancelled by {send._cancelled_by}")
            send._cancelled_by = None  # too late: the provider's human decided already
        else:
            outcome = await held_activity(send, MailActivities.held_outcome, pending_id)
        if outcome.status == "pending":
            if workflow.now() < send._expires_at:
                continue
            late = await held_activity(send, MailActivities.cancel_held, pending_id)
            # The provider's human may have decided after the last look: the cancel's answer says.
            if late.status in ("pending", "cancelled") or not (send._current or workflow.patched(HELD_EXPIRY_PATCH)):
                hours = window.total_seconds() / 3600
                return send._finish("expired", f"the provider's human did not decide within {hours:g} hours")
            outcome = late
        return held_ended(send, receipt, outcome)


async def watch_provider(send: SendRecord, receipt: DeliveryReceipt, every: timedelta) -> SendState:
    """provider-hold-v2: one activity polls the provider until its human decides or the window
    ends, heartbeating; the history grows by a few events per watch, not per poll. A webhook
    (or a cancel) stops the watch; the next one looks at once."""
    pending_id = receipt.provider_id
    assert send._expires_at is not None
    while True:
        send._provider_reported = False
        left = max(send._expires_at - workflow.now(), timedelta(0))
        watch = workflow.start_activity_method(
            MailActivities.watch_held,
            args=[send._request.mailbox, pending_id, every.total_seconds(), send._expires_at],
            start_to_close_timeout=left + HELD_MARGIN,
            schedule_to_close_timeout=left + HELD_MARGIN,
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=HELD_RETRY,
            summary="provider decision",
        )
        await workflow.wait_condition(functools.partial(watch_ended, send, watch))
        if not watch.done():
            watch.cancel()
            with contextlib.suppress(ActivityError, CancelledError):
                await watch
            if send._cancelled_by is None:
                continue  # a webhook: look again now
            outcome = await held_activity(send, MailActivities.cancel_held, pending_id)
            if outcome.status == "cancelled":
                return send._finish("cancelled", f"cancelled by {send._cancelled_by}")
            send._cancelled_by = None  # too late: the provider's human decided already
        else:
            try:
                outcome = watch.result()
            except ActivityError as err:
                outcome = HeldOutcome(status="failed", detail=failure(err))
        if outcome.status == "pending":
            if workflow.now() < send._expires_at:
                continue
            late = await held_activity(send, MailActivities.cancel_held, pending_id)
            # The provider's human may have decided after the last look: the cancel's answer says.
            if late.status in ("pending", "cancelled"):
                hours = send._request.approval_timeout.total_seconds() / 3600
                return send._finish("expired", f"the provider's human did not decide within {hours:g} hours")
            outcome = late
        return held_ended(send, receipt, outcome)


def held_ended(send: SendRecord, receipt: DeliveryReceipt, outcome: HeldOutcome) -> SendState:
    """The provider's human decided (or the provider failed): the send ends as the provider says."""
    assert outcome.status != "pending"  # the loops wait on while it is
    send._held_by_provider = None
    if outcome.status == "sent":
        send._delivered_at = workflow.now()
        return send._finish("sent", f"{outcome.detail}; delivered as {receipt.message_id}")
    return send._finish(outcome.status, outcome.detail)


def watch_ended(send: SendRecord, watch: workflow.ActivityHandle[HeldOutcome]) -> bool:
    return watch.done() or send._provider_reported or send._cancelled_by is not None


async def held_activity(
    send: SendRecord, activity: Callable[[MailActivities, str, str], Awaitable[HeldOutcome]], pending_id: str
) -> HeldOutcome:
    try:
        outcome = await workflow.execute_activity_method(
            activity,
            args=[send._request.mailbox, pending_id],
            start_to_close_timeout=timedelta(minutes=1),
            # An overall deadline: a provider that stays unreachable ends the send as failed.
            schedule_to_close_timeout=HELD_DEADLINE,
            retry_policy=HELD_RETRY,
        )
    except ActivityError as err:
        return HeldOutcome(status="failed", detail=failure(err))
    return outcome
