"""How the send workflow calls its activities: timeouts, retries, deadlines and size limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.activities.send import DeliveryFailed

ADMIT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=[DeliveryFailed.__name__],
)
# A provider that stays unreachable this long ends the send as failed instead of retrying forever.
DELIVERY_DEADLINE = timedelta(days=2)
DELIVERY_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=2),
    # The activity heartbeats while it works, so a dead worker is noticed in seconds.
    "heartbeat_timeout": timedelta(seconds=10),
    "schedule_to_close_timeout": DELIVERY_DEADLINE,
    "retry_policy": DELIVERY_RETRY,
    # A Temporal cancel (or a worker stopping) must not abandon a delivery half way: the activity
    # finishes a hand-over it began, and the workflow records what really happened (a receipt is
    # "sent"; a cancel the activity honoured before the provider had the email is "cancelled").
    "cancellation_type": workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}
# Temporal refuses payloads over 2 MB (the server's blob size limit); the delivery activity's
# input carries the whole approved draft, so an edit that grows it past this is refused up front.
PAYLOAD_LIMIT = 2 * 1024 * 1024
PAYLOAD_BUDGET = PAYLOAD_LIMIT - 64 * 1024  # envelope, encryption and the admission beside it

HELD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))
# A hold's watch ends at the approval window; this margin covers a retry after a worker died.
HELD_MARGIN = timedelta(hours=1)
# Asking or withdrawing at the provider gives up after a day of retries (the send ends failed).
HELD_DEADLINE = timedelta(days=1)


def failure(err: ActivityError) -> str:
    """What a failed activity said, for the send's reason."""
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)
