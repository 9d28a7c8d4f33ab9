"""Whether a human's decision on a send counts: the approval window, the approver, the size of an
edit. Pure rules over the send's record and the workflow task's time, so the sandbox passes this
module through (``workflows/sandbox.py``) instead of re-importing it for every send; the
workflow (``send.py``) checks a decision's proof and records what counts, or the refusal."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from temporalio.exceptions import ApplicationError

from workflows.models import FINAL_STATUSES, GATED_MODES, Decision
from workflows.sending.options import PAYLOAD_BUDGET

if TYPE_CHECKING:
    from workflows.sending.record import SendRecord


class DecisionRefused(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="DecisionRefused", non_retryable=True)


def window_closed(send: SendRecord, now: datetime) -> str | None:
    """The approval window is [asked, deadline): a decision handled in a workflow task that
    starts at or after the deadline is late, even if the task also fires the expiry timer.
    The time that counts is the task's (``workflow.now()``), so replay decides the same way."""
    if send._status != "pending_approval" or send._expires_at is None or send._held_by_provider is not None:
        return None
    if now < send._expires_at:
        return None
    closed = send._expires_at.isoformat(timespec="seconds")
    return f"send {send._request.send_id}: the approval window closed at {closed}; it expires undecided"


def too_large(send: SendRecord, decision: Decision) -> str | None:
    """An edit that would make the delivery's input exceed Temporal's payload limit."""
    edits = decision.edits
    if decision.decision != "approve" or edits is None or not edits.changes():
        return None
    size = len(edits.apply(send._request.draft).model_dump_json())
    if size <= PAYLOAD_BUDGET:
        return None
    return (
        f"the edited email would be {size / 1e6:.2f} MB, over the {PAYLOAD_BUDGET / 1e6:.2f} MB that one "
        "Temporal payload may carry; shorten the edited body (or approve without the edit)"
    )


def decision_problem(send: SendRecord, decision: Decision, now: datetime) -> str | None:
    """Why this decision may not decide the send now (who decides, and whether there is anything
    left to decide), or None."""
    request = send._request
    if send._held_by_provider is not None:
        return (
            f"send {request.send_id} is held by its mail provider for approval "
            f"(pending id {send._held_by_provider}): a human decides it there"
        )
    if send._decision is not None:
        done = send._decision
        verb = "approved" if done.decision == "approve" else "rejected"
        when = done.decided_at.isoformat(timespec="seconds") if done.decided_at else "earlier"
        return f"send {request.send_id} was already {verb} by {done.approver} at {when}"
    if send._status in FINAL_STATUSES:
        return f"send {request.send_id} is {send._status}; there is nothing to decide"
    if send._mode not in GATED_MODES:
        return f"send {request.send_id} needs no approval (mailbox mode {send._mode})"
    send_at = request.send_at
    if send_at and request.approve_at_send_time and now < send_at:
        return f"send {request.send_id} asks for approval at {send_at.isoformat()}; decide then"
    approver = decision.approver.strip().lower()
    if approver == request.requester.strip().lower():
        return f"{decision.approver} requested this send and may not decide it"
    approvers = [a.lower() for a in request.policy.approvers]
    if approvers and approver not in approvers:
        return f"{decision.approver} is not an approver of {request.mailbox}"
    return None
