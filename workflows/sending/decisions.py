"""Whether a human's decision on a send counts: a front door's proof, the approval window, the
approver, the size of an edit. What does not count is refused with a reason and recorded."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.activities.proofs import proven
    from workflows.models import FINAL_STATUSES, GATED_MODES, Decision
    from workflows.patches import FIRST_TASK_SIGNED_PATCH, PROOFS_PATCH, SIGNED_DECISIONS_PATCH
    from workflows.trust.proofs import NO_PROOF, decision_check
    from workflows.trust.signatures import signature_holds

from workflows.sending.options import PAYLOAD_BUDGET
from workflows.sending.record import SendRecord


class DecisionRefused(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="DecisionRefused", non_retryable=True)


class DecisionRules(SendRecord):
    """Checks a decision before it counts, and applies one that does."""

    async def _unproven(self, decision: Decision) -> str | None:
        """Why a decision does not count for want of a front door's proof, or None if it has one.
        Anything that reaches Temporal can signal; only mailgate's front doors can prove."""
        key, signature = self._request.decision_key, decision.signature
        # False before run() chose, in the send's first task (its handlers run before run()):
        # choose here. Later, False means a history from before signatures, without this patch.
        if (
            not self._signed_decisions
            and key is not None
            and signature is not None
            and (self._current or workflow.patched(FIRST_TASK_SIGNED_PATCH))
        ):
            self._signed_decisions = self._current or workflow.patched(SIGNED_DECISIONS_PATCH)
        if self._signed_decisions and key is not None and signature is not None:
            # Checked here, in this workflow task (the send's first task chose this way, behind a
            # patch). The send id is the request's, not the workflow id, so a replay under another
            # id decides alike; the delivery activity holds the two equal and checks the proof again.
            holds = signature_holds(key, decision_check(self._request.send_id, decision), signature)
        elif not (self._current or workflow.patched(PROOFS_PATCH)):
            return None
        else:
            holds = await proven(decision_check(workflow.info().workflow_id, decision))
        if holds:
            return None
        return f"refused: this decision {NO_PROOF}"

    def _window_closed(self) -> str | None:
        """The approval window is [asked, deadline): a decision handled in a workflow task that
        starts at or after the deadline is late, even if the task also fires the expiry timer.
        The time that counts is the task's (``workflow.now()``), so replay decides the same way."""
        if self._status != "pending_approval" or self._expires_at is None or self._held_by_provider is not None:
            return None
        if workflow.now() < self._expires_at:
            return None
        closed = self._expires_at.isoformat(timespec="seconds")
        return f"send {self._request.send_id}: the approval window closed at {closed}; it expires undecided"

    def _too_large(self, decision: Decision) -> str | None:
        """An edit that would make the delivery's input exceed Temporal's payload limit."""
        edits = decision.edits
        if decision.decision != "approve" or edits is None or not edits.changes():
            return None
        size = len(edits.apply(self._request.draft).model_dump_json())
        if size <= PAYLOAD_BUDGET:
            return None
        return (
            f"the edited email would be {size / 1e6:.2f} MB, over the {PAYLOAD_BUDGET / 1e6:.2f} MB that one "
            "Temporal payload may carry; shorten the edited body (or approve without the edit)"
        )

    def _decision_problem(self, decision: Decision) -> str | None:
        if self._held_by_provider is not None:
            return (
                f"send {self._request.send_id} is held by its mail provider for approval "
                f"(pending id {self._held_by_provider}): a human decides it there"
            )
        if self._decision is not None:
            done = self._decision
            verb = "approved" if done.decision == "approve" else "rejected"
            when = done.decided_at.isoformat(timespec="seconds") if done.decided_at else "earlier"
            return f"send {self._request.send_id} was already {verb} by {done.approver} at {when}"
        if self._status in FINAL_STATUSES:
            return f"send {self._request.send_id} is {self._status}; there is nothing to decide"
        if self._mode not in GATED_MODES:
            return f"send {self._request.send_id} needs no approval (mailbox mode {self._mode})"
        send_at = self._request.send_at
        if send_at and self._request.approve_at_send_time and workflow.now() < send_at:
            return f"send {self._request.send_id} asks for approval at {send_at.isoformat()}; decide then"
        approver = decision.approver.strip().lower()
        if approver == self._request.requester.strip().lower():
            return f"{decision.approver} requested this send and may not decide it"
        approvers = [a.lower() for a in self._request.policy.approvers]
        if approvers and approver not in approvers:
            return f"{decision.approver} is not an approver of {self._request.mailbox}"
        return None

    def _apply_decision(self, decision: Decision) -> None:
        decision = decision.model_copy(update={"decided_at": workflow.now()})
        self._decision = decision
        if decision.decision == "approve" and decision.edits is not None and decision.edits.changes():
            self._approved = decision.edits.apply(self._request.draft)
            self._event("edited", decision.approver, ", ".join(sorted(decision.edits.changes())))
        verb = "approved" if decision.decision == "approve" else "rejected"
        self._event(verb, decision.approver, f"via {decision.channel}: {decision.reason or ''}".strip(": "))
