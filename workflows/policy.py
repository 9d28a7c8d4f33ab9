"""Mailbox policies as pure functions, so the workflows and the front doors agree exactly."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from workflows.addresses import matches
from workflows.models import EmailAddress, MailboxPolicy

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def recipient_problem(policy: MailboxPolicy, recipients: Iterable[EmailAddress]) -> str | None:
    """Why these recipients may not be mailed from this mailbox, or None if they may."""
    for recipient in recipients:
        address = recipient.address
        if any(matches(address, entry) for entry in policy.deny):
            return f"recipient {address} is on the mailbox's deny-list"
        if policy.allow and not any(matches(address, entry) for entry in policy.allow):
            return f"recipient {address} is not on the mailbox's allow-list ({', '.join(policy.allow)})"
    return None


def rate_problem(sent_at: Sequence[datetime], now: datetime, per_hour: int | None, per_day: int | None) -> str | None:
    """Why one more send now would exceed the mailbox's rate limits, with when a slot opens."""
    for limit, window, label in ((per_hour, HOUR, "hour"), (per_day, DAY, "day")):
        if limit is None:
            continue
        inside = sorted(t for t in sent_at if t > now - window)
        if len(inside) >= limit:
            opens = inside[len(inside) - limit] + window
            return (
                f"rate limit reached: {limit} sends per {label}; "
                f"the next send is allowed after {opens.isoformat(timespec='seconds')}"
            )
    return None
