"""mailgate's own metrics, recorded through the Temporal SDK's metric meter.

From a workflow the meter records only when the code runs for the first time (never on replay),
so a send is counted once however often its history replays; the process exports them with the
SDK's metrics (see server/telemetry.py)."""

from __future__ import annotations

from temporalio import activity, workflow

SENDS = "mailgate_sends"
APPROVAL_LATENCY = "mailgate_approval_latency"
PROVIDER_ERRORS = "mailgate_provider_errors"


def count_send(status: str, mailbox: str) -> None:
    """A send that ended (sent, rejected, expired, cancelled, blocked, failed)."""
    meter = workflow.metric_meter()
    meter.create_counter(SENDS, "sends by final status").add(1, {"status": status, "mailbox": mailbox})


def observe_approval(seconds: float, outcome: str) -> None:
    """Time from asking a human to their decision (approve, reject) or to the send's end otherwise."""
    meter = workflow.metric_meter()
    meter.create_histogram_float(APPROVAL_LATENCY, "time a send waited for a human", "s").record(
        max(seconds, 0.0), {"outcome": outcome}
    )


def count_provider_error(provider: str, permanent: bool) -> None:
    """A provider refused or failed a delivery attempt (permanent: it will not be retried)."""
    meter = activity.metric_meter()
    meter.create_counter(PROVIDER_ERRORS, "provider errors while delivering").add(
        1, {"provider": provider, "permanent": "true" if permanent else "false"}
    )
