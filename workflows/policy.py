"""Mailbox policies as pure functions, so the workflows and the front doors agree exactly."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from workflows.mail.addresses import matches
from workflows.models import GATED_MODES, Admission, AdmitRequest, EmailAddress, MailboxConfig, MailboxPolicy

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


def judge(config: MailboxConfig, request: AdmitRequest, sent_at: Sequence[datetime], now: datetime) -> Admission:
    """May this send go out now? The mode, the recipients and the rate limits, in that order."""
    mode = config.mode
    if mode == "read_only":
        return Admission(outcome="blocked", mode=mode, reason="mailbox is read_only: it may not send")
    if mode in GATED_MODES and request.approved_by is None:
        return Admission(outcome="needs_approval", mode=mode, reason=f"mailbox is now {mode}")
    problem = recipient_problem(config.policy(), request.recipients) or rate_problem(
        sent_at, now, config.rate_per_hour, config.rate_per_day
    )
    if problem:
        return Admission(outcome="blocked", mode=mode, reason=problem)
    return Admission(outcome="ok", mode=mode)


def needs_the_mailbox(config: MailboxConfig) -> bool:
    """Whether admission must go through the mailbox workflow: to count against a rate limit
    atomically, or to put a monitored send on the review list. Otherwise the configuration the
    mailbox publishes in its memo is all the answer needs."""
    return config.mode == "monitored" or bool(config.rate_per_hour or config.rate_per_day)
