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
    from workflows.activities.send import MailActivities
    from workflows.metrics import observe_approval
    from workflows.models import FINAL_STATUSES, GATED_MODES, Decision, DeliveryReceipt, SendRequest, SendState
    from workflows.patches import (
        ADMIT_WITH_DELIVERY_PATCH,
        CANCEL_BEFORE_DELIVERY_PATCH,
        EXPIRY_WINS_PATCH,
        SIGNED_DECISIONS_PATCH,
        TEMPORAL_CANCEL_PATCH,
    )
    from workflows.policy import recipient_problem

from workflows.sending.announcements import Announcements
from workflows.sending.decisions import DecisionRefused, DecisionRules
from workflows.sending.delivery import Delivery


@workflow.defn
class SendEmailWorkflow(Delivery, DecisionRules, Announcements):
    """The state lives in SendRecord (``workflows/sending/record.py``); the steps below read top to
    bottom: checks, a scheduled time, a human's decision, then delivery (``sending/delivery.py``)."""

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
            outcome = await self._held_activity(MailActivities.cancel_held, pending_id)
            late = f"{outcome.detail} (a cancel through Temporal came too late)"
            if outcome.status == "sent":
                self._delivered_at = workflow.now()
                return self._finish("sent", late)
            if outcome.status == "rejected" or outcome.status == "failed":
                return self._finish(outcome.status, late)
        state = self._finish("cancelled", "cancelled through Temporal")
        await self._settle_slack(self._slack_round, "cancelled", "temporal")
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
                admission, outcome = await self._admit_and_deliver()
            else:
                admission = await self._admit()
            if admission.outcome == "ok":
                break
            if admission.outcome == "blocked":
                return self._finish("blocked", admission.reason)
            # The mailbox was tightened to a gated mode after submission: a human decides now.
            self._mode = admission.mode
            self._event("gated", "mailbox", admission.reason)
            if not await self._await_decision():
                return self._state()
        state = await (self._deliver() if outcome is None else self._settle(outcome))
        if state.status == "sent" and admission.mode == "monitored":
            await self._notify("monitored_sent", "monitored")
        return state

    async def _await_decision(self) -> bool:
        """Wait for a human; True when approved, False when the send ended another way."""
        window = self._request.approval_timeout
        self._expires_at = workflow.now() + window
        self._set_status("pending_approval")
        self._approval_rounds += 1
        await self._notify("approval_requested", f"approval-{self._approval_rounds}")
        slack = self._slack_round = await self._start_slack()
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
            await self._settle_slack(slack, "expired", "mailgate")
            return False
        if self._cancelled_by is not None:
            self._finish("cancelled", f"cancelled by {self._cancelled_by}")
            await self._settle_slack(slack, "cancelled", self._cancelled_by)
            return False
        assert self._decision is not None
        observe_approval((workflow.now() - asked_at).total_seconds(), self._decision.decision)
        if self._decision.decision == "reject":
            self._finish("rejected", self._decision.reason or "")
            await self._settle_slack(slack, "rejected", self._decision.approver, self._decision.reason or "")
            return False
        await self._settle_slack(slack, "approved", self._decision.approver)
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
        problem = await self._unproven(decision) or self._decision_problem(decision)
        if not problem and self._window_closed() and (self._current or workflow.patched(EXPIRY_WINS_PATCH)):
            problem = self._window_closed()  # the window closed while the proof was checked
        if problem:
            self._event("decision_refused", decision.approver, problem)
            raise DecisionRefused(problem)
        self._apply_decision(decision)
        # Answer with where the send went next (sending, scheduled, rejected), not the old status.
        await workflow.wait_condition(lambda: self._status != "pending_approval")
        return self._state()

    @decide.validator
    def _validate_decide(self, decision: Decision) -> None:
        problem = self._decision_problem(decision) or self._window_closed() or self._too_large(decision)
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
        problem = self._decision_problem(decision) or self._too_large(decision)
        if problem is None:
            problem = await self._unproven(decision) or self._decision_problem(decision)
        if not problem and self._window_closed() and (self._current or workflow.patched(EXPIRY_WINS_PATCH)):
            problem = self._window_closed()
        if problem:
            self._event("decision_refused", decision.approver, problem)
            return
        self._apply_decision(decision)

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
