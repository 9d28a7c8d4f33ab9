"""SendEmailWorkflow: one outbound email, from the agent's request to its single delivery.

The workflow id is the send id. A gated send waits here, for as long as its approval
window, for a human decision; nothing but this workflow's history holds its state.
The steps it takes (deciding, delivering, waiting for a provider's human, telling humans)
are in ``workflows/sending/``; this module holds its run and its handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.activities.proofs import proven
    from workflows.activities.send import MailActivities
    from workflows.metrics import observe_approval
    from workflows.models import FINAL_STATUSES, GATED_MODES, Decision, DeliveryReceipt, SendRequest, SendState
    from workflows.patches import (
        ADMIT_WITH_DELIVERY_PATCH,
        CANCEL_BEFORE_DELIVERY_PATCH,
        EXPIRY_WINS_PATCH,
        FIRST_TASK_SIGNED_PATCH,
        PROOFS_PATCH,
        SIGNED_DECISIONS_PATCH,
        TEMPORAL_CANCEL_PATCH,
    )
    from workflows.policy import recipient_problem
    from workflows.sending.decisions import DecisionRefused, decision_problem, too_large, window_closed
    from workflows.trust.proofs import NO_PROOF, decision_check
    from workflows.trust.signatures import signature_holds

from workflows.sending import announcements, delivery
from workflows.sending.provider_hold import held_activity
from workflows.sending.record import SendRecord


@workflow.defn
class SendEmailWorkflow(SendRecord):
    """The state lives in SendRecord (``workflows/sending/record.py``); the steps below read top to
    bottom: checks, a scheduled time, a human's decision, then delivery (``sending/delivery.py``).
    The steps are functions over that record, not bases of this class: Temporal checks a workflow
    class and each of its bases whenever the sandbox defines it, once per workflow instance."""

    @workflow.init
    def __init__(self, request: SendRequest) -> None:
        super().__init__(request)

    @workflow.run
    async def run(self, request: SendRequest) -> SendState:
        if request.decision_key is not None:
            # Decided in the first task, so a decision later costs one task (sending/decisions.py).
            self._signed_decisions = self._current or workflow.patched(SIGNED_DECISIONS_PATCH)
        try:
            return await self._run(request)
        except asyncio.CancelledError:
            # A cancel from Temporal itself (UI, CLI) while the send waits: end it as cancelled, in
            # its state and search attribute, instead of leaving it "pending" in every listing.
            if not (self._current or workflow.patched(TEMPORAL_CANCEL_PATCH)) or self._status in FINAL_STATUSES:
                raise
            return await self._cancelled_by_temporal()

    async def _cancelled_by_temporal(self) -> SendState:
        self._cancelled_by = "temporal"
        pending_id = self._held_by_provider
        if pending_id is not None:
            outcome = await held_activity(self, MailActivities.cancel_held, pending_id)
            late = f"{outcome.detail} (a cancel through Temporal came too late)"
            if outcome.status == "sent":
                self._delivered_at = workflow.now()
                return self._finish("sent", late)
            if outcome.status == "rejected" or outcome.status == "failed":
                return self._finish(outcome.status, late)
        state = self._finish("cancelled", "cancelled through Temporal")
        await announcements.settle_slack(self, self._slack_round, "cancelled", "temporal")
        return state

    async def _run(self, request: SendRequest) -> SendState:
        self._event("requested", request.requester, f"mode {self._mode}")
        if self._mode == "read_only":
            return self._finish("blocked", "mailbox is read_only: it may not send")
        problem = recipient_problem(request.policy, request.draft.recipients())
        if problem:
            return self._finish("blocked", problem)

        if request.send_at and request.approve_at_send_time and not await self._wait_until(request.send_at):
            return self._finish("cancelled", f"cancelled by {self._cancelled_by}")
        if self._mode in GATED_MODES and not await self._await_decision():
            return self._state()
        if request.send_at and workflow.now() < request.send_at and not await self._wait_until(request.send_at):
            return self._finish("cancelled", f"cancelled by {self._cancelled_by}")
        # A cancel accepted before the send's first task (an autonomous send has no wait where it
        # is seen) ends it here, before anything is handed to the provider.
        if self._cancelled_by is not None and (self._current or workflow.patched(CANCEL_BEFORE_DELIVERY_PATCH)):
            return self._finish("cancelled", f"cancelled by {self._cancelled_by}")

        while True:
            self._set_status("sending")
            outcome: DeliveryReceipt | str | None = None
            if self._current or workflow.patched(ADMIT_WITH_DELIVERY_PATCH):
                admission, outcome = await delivery.admit_and_deliver(self)
            else:
                admission = await delivery.admit(self)
            if admission.outcome == "ok":
                break
            if admission.outcome == "blocked":
                return self._finish("blocked", admission.reason)
            # The mailbox was tightened to a gated mode after submission: a human decides now.
            self._mode = admission.mode
            self._event("gated", "mailbox", admission.reason)
            if not await self._await_decision():
                return self._state()
        state = await (delivery.deliver(self) if outcome is None else delivery.settle(self, outcome))
        if state.status == "sent" and admission.mode == "monitored":
            await announcements.notify(self, "monitored_sent", "monitored")
        return state

    async def _await_decision(self) -> bool:
        """Wait for a human; True when approved, False when the send ended another way."""
        window = self._request.approval_timeout
        self._expires_at = workflow.now() + window
        self._set_status("pending_approval")
        self._approval_rounds += 1
        await announcements.notify(self, "approval_requested", f"approval-{self._approval_rounds}")
        slack = self._slack_round = await announcements.start_slack(self)
        asked_at = workflow.now()
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None or self._cancelled_by is not None,
                timeout=window,
                timeout_summary="approval window",
            )
        except TimeoutError:
            observe_approval((workflow.now() - asked_at).total_seconds(), "expired")
            hours = window.total_seconds() / 3600
            self._finish("expired", f"no decision within the approval window of {hours:g} hours")
            await announcements.settle_slack(self, slack, "expired", "mailgate")
            return False
        if self._cancelled_by is not None:
            self._finish("cancelled", f"cancelled by {self._cancelled_by}")
            await announcements.settle_slack(self, slack, "cancelled", self._cancelled_by)
            return False
        assert self._decision is not None
        observe_approval((workflow.now() - asked_at).total_seconds(), self._decision.decision)
        if self._decision.decision == "reject":
            self._finish("rejected", self._decision.reason or "")
            await announcements.settle_slack(
                self, slack, "rejected", self._decision.approver, self._decision.reason or ""
            )
            return False
        await announcements.settle_slack(self, slack, "approved", self._decision.approver)
        return True

    async def _wait_until(self, at: datetime) -> bool:
        """Sleep until a scheduled time; False if the send was cancelled meanwhile."""
        self._set_status("scheduled")
        delay = at - workflow.now()
        if delay > timedelta(0):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._cancelled_by is not None, timeout=delay, timeout_summary="send_at"
                )
        return self._cancelled_by is None

    @workflow.update
    async def decide(self, decision: Decision) -> SendState:
        # The validator ran before the proof was checked; another decision may have landed since.
        problem = await self._unproven(decision) or decision_problem(self, decision, workflow.now())
        problem = problem or self._closed_meanwhile()
        if problem:
            self._event("decision_refused", decision.approver, problem)
            raise DecisionRefused(problem)
        self._apply_decision(decision)
        # Answer with where the send went next (sending, scheduled, rejected), not the old status.
        await workflow.wait_condition(lambda: self._status != "pending_approval")
        return self._state()

    @decide.validator
    def _validate_decide(self, decision: Decision) -> None:
        problem = (
            decision_problem(self, decision, workflow.now())
            or window_closed(self, workflow.now())
            or too_large(self, decision)
        )
        if problem:
            raise DecisionRefused(problem)

    @workflow.signal
    async def decide_signal(self, decision: Decision) -> None:
        """The same decision as `decide`, for senders that cannot wait for a worker (webhooks, links)."""
        if self._held_by_provider is not None and decision.channel == "multimail":
            # The provider's human decided: look now (the provider, not the webhook, says what happened).
            self._provider_reported = True
            self._event("provider_reported", decision.approver, f"{decision.decision} ({decision.reason or ''})")
            return
        if decision.decision_id is not None:
            if decision.decision_id in self._seen_decision_ids:
                return
            self._seen_decision_ids.add(decision.decision_id)
        problem = decision_problem(self, decision, workflow.now()) or too_large(self, decision)
        if problem is None:
            problem = await self._unproven(decision) or decision_problem(self, decision, workflow.now())
        problem = problem or self._closed_meanwhile()
        if problem:
            self._event("decision_refused", decision.approver, problem)
            return
        self._apply_decision(decision)

    def _closed_meanwhile(self) -> str | None:
        """The approval window closed while the decision's proof was checked: the send expires
        undecided (histories from before EXPIRY_WINS_PATCH let such a decision count)."""
        closed = window_closed(self, workflow.now())
        if closed and (self._current or workflow.patched(EXPIRY_WINS_PATCH)):
            return closed
        return None

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

    def _apply_decision(self, decision: Decision) -> None:
        """Record a decision that counts, and the edits it approves."""
        decision = decision.model_copy(update={"decided_at": workflow.now()})
        self._decision = decision
        if decision.decision == "approve" and decision.edits is not None and decision.edits.changes():
            self._approved = decision.edits.apply(self._request.draft)
            self._event("edited", decision.approver, ", ".join(sorted(decision.edits.changes())))
        verb = "approved" if decision.decision == "approve" else "rejected"
        self._event(verb, decision.approver, f"via {decision.channel}: {decision.reason or ''}".strip(": "))

    @workflow.update
    async def cancel(self, actor: str) -> SendState:
        self._cancelled_by = actor
        await workflow.wait_condition(lambda: self._status in FINAL_STATUSES)
        return self._state()

    @cancel.validator
    def _validate_cancel(self, actor: str) -> None:
        if self._status in FINAL_STATUSES or self._status == "sending":
            raise DecisionRefused(f"send {self._request.send_id} is {self._status}; it can no longer be cancelled")

    @workflow.query
    def state(self) -> SendState:
        return self._state()
