"""SendEmailWorkflow: one outbound email, from the agent's request to its single delivery.

The workflow id is the send id. A gated send waits here, for as long as its approval
window, for a human decision; nothing but this workflow's history holds its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from workflows.activities.proofs import proven
    from workflows.activities.send import DeliveryFailed, MailActivities
    from workflows.models import (
        FINAL_STATUSES,
        GATED_MODES,
        Admission,
        AdmitRequest,
        AuditEvent,
        Decision,
        DeliveryReceipt,
        DeliveryRequest,
        EmailDraft,
        HeldOutcome,
        OversightMode,
        SendRequest,
        SendState,
        SendStatus,
    )
    from workflows.notices import Notice, NoticeKind, light_draft
    from workflows.patches import (
        ADMIT_WITH_DELIVERY_PATCH,
        CANCEL_BEFORE_DELIVERY_PATCH,
        EXPIRY_WINS_PATCH,
        HELD_EXPIRY_PATCH,
        NOTIFY_PATCH,
        PROOFS_PATCH,
        PROVIDER_HOLD_PATCH,
        PROVIDER_WATCH_PATCH,
        SLACK_PATCH,
        TEMPORAL_CANCEL_PATCH,
    )
    from workflows.policy import recipient_problem
    from workflows.slack_client.message import SlackOutcome, SlackRequest, SlackStatus
    from workflows.temporal import STATUS
    from workflows.trust.proofs import NO_PROOF, decision_check, warrant_for

from workflows.notify import NotifyWorkflow
from workflows.slack import SlackWorkflow

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


def _failure(err: ActivityError) -> str:
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)


HELD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))
# A hold's watch ends at the approval window; this margin covers a retry after a worker died.
HELD_MARGIN = timedelta(hours=1)
# Asking or withdrawing at the provider gives up after a day of retries (the send ends failed).
HELD_DEADLINE = timedelta(days=1)


class DecisionRefused(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="DecisionRefused", non_retryable=True)


@workflow.defn
class SendEmailWorkflow:
    @workflow.init
    def __init__(self, request: SendRequest) -> None:
        self._request = request
        self._mode: OversightMode = request.policy.mode
        self._status: SendStatus = "pending_approval"
        # The client indexes the first status at start; upsert only when it changes.
        self._indexed_status: str | None = workflow.info().typed_search_attributes.get(STATUS)
        self._decision: Decision | None = None
        self._approved: EmailDraft | None = None
        self._cancelled_by: str | None = None
        self._expires_at: datetime | None = None
        self._delivered_at: datetime | None = None
        self._reason = ""
        self._events: list[AuditEvent] = []
        self._seen_decision_ids: set[str] = set()
        self._approval_rounds = 0
        self._held_by_provider: str | None = None  # the provider's pending id while its human decides
        self._provider_reported = False
        self._delivery_cancelled = False  # the delivery activity honoured a Temporal cancel
        self._slack_round: str | None = None  # the SlackWorkflow of the current approval round

    @workflow.run
    async def run(self, request: SendRequest) -> SendState:
        try:
            return await self._run(request)
        except asyncio.CancelledError:
            # A cancel from Temporal itself (UI, CLI) while the send waits: end it as cancelled, in
            # its state and search attribute, instead of leaving it "pending" in every listing.
            if not workflow.patched(TEMPORAL_CANCEL_PATCH) or self._status in FINAL_STATUSES:
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
        if self._cancelled_by is not None and workflow.patched(CANCEL_BEFORE_DELIVERY_PATCH):
            return self._finish("cancelled", f"cancelled by {self._cancelled_by}")

        while True:
            self._set_status("sending")
            outcome: DeliveryReceipt | str | None = None
            if workflow.patched(ADMIT_WITH_DELIVERY_PATCH):
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
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None or self._cancelled_by is not None,
                timeout=window,
                timeout_summary="approval window",
            )
        except TimeoutError:
            hours = window.total_seconds() / 3600
            self._finish("expired", f"no decision within the approval window of {hours:g} hours")
            await self._settle_slack(slack, "expired", "mailgate")
            return False
        if self._cancelled_by is not None:
            self._finish("cancelled", f"cancelled by {self._cancelled_by}")
            await self._settle_slack(slack, "cancelled", self._cancelled_by)
            return False
        assert self._decision is not None
        if self._decision.decision == "reject":
            self._finish("rejected", self._decision.reason or "")
            await self._settle_slack(slack, "rejected", self._decision.approver, self._decision.reason or "")
            return False
        await self._settle_slack(slack, "approved", self._decision.approver)
        return True

    async def _start_slack(self) -> str | None:
        """Post this round to the mailbox's Slack channel (an abandoned child); its id, or None."""
        request = self._request
        if not request.slack_channel or not workflow.patched(SLACK_PATCH):
            return None
        assert self._expires_at is not None
        slack_id = f"slack-{request.send_id}-{self._approval_rounds}"
        message = SlackRequest(
            send_id=request.send_id,
            mailbox=request.mailbox,
            channel=request.slack_channel,
            requester=request.requester,
            draft=light_draft(self._draft()),
            expires_at=self._expires_at,
        )
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                SlackWorkflow.run,
                message,
                id=slack_id,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"Slack message for {request.send_id}",
            )
        return slack_id

    async def _settle_slack(self, slack_id: str | None, status: SlackStatus, by: str, reason: str = "") -> None:
        """Tell the round's Slack message how it ended; a message that is gone changes nothing here."""
        if slack_id is None:
            return
        outcome = SlackOutcome(status=status, by=by, at=workflow.now(), reason=reason)
        with contextlib.suppress(FailureError):
            await workflow.get_external_workflow_handle(slack_id).signal(SlackWorkflow.settle, outcome)

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

    def _admit_request(self) -> AdmitRequest:
        return AdmitRequest(
            send_id=self._request.send_id,
            recipients=self._draft().recipients(),
            approved_by=self._decision.approver if self._decision else None,
        )

    def _delivery_request(self) -> DeliveryRequest:
        return DeliveryRequest(
            send_id=self._request.send_id,
            mailbox=self._request.mailbox,
            from_name=self._request.from_name,
            draft=self._draft(),
            message_id=self._request.message_id,
            date=workflow.now(),
            warrant=warrant_for(self._request, self._decision),
        )

    async def _admit(self) -> Admission:
        """Histories from before admit-with-delivery: the admission as an activity of its own."""
        return await workflow.execute_activity_method(
            MailActivities.admit,
            args=[self._request.mailbox, self._admit_request()],
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=ADMIT_RETRY,
        )

    async def _admit_and_deliver(self) -> tuple[Admission, DeliveryReceipt | str | None]:
        """One activity asks the mailbox and, if it may, delivers: a refusal comes back with no
        receipt, a delivery with its receipt, a permanent failure with the provider's words."""
        try:
            attempt = await workflow.execute_activity_method(
                MailActivities.admit_and_deliver,
                args=[self._admit_request(), self._delivery_request()],
                **DELIVERY_OPTIONS,
            )
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                self._delivery_cancelled = True
            return Admission(outcome="ok", mode=self._mode), _failure(err)
        return attempt.admission, attempt.receipt

    async def _deliver(self) -> SendState:
        """Histories from before admit-with-delivery: delivery after a separate admission."""
        try:
            receipt = await workflow.execute_activity_method(
                MailActivities.deliver, self._delivery_request(), **DELIVERY_OPTIONS
            )
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                self._delivery_cancelled = True
            return await self._settle(_failure(err))
        return await self._settle(receipt)

    async def _settle(self, outcome: DeliveryReceipt | str) -> SendState:
        if isinstance(outcome, str):
            if self._delivery_cancelled:
                return self._finish("cancelled", "cancelled through Temporal before the provider accepted it")
            return self._finish("failed", outcome)
        if outcome.held and workflow.patched(PROVIDER_HOLD_PATCH):
            return await self._await_provider(outcome)
        self._delivered_at = workflow.now()
        return self._finish("sent", f"delivered as {outcome.message_id}")

    async def _notify(self, kind: NoticeKind, suffix: str) -> None:
        """Start the notice as an abandoned child: it outlives this send and retries on its own."""
        if not workflow.patched(NOTIFY_PATCH) or not self._request.notify:
            return
        request = self._request
        notice = Notice(
            notice_id=f"notify-{request.send_id}-{suffix}",
            kind=kind,
            mailbox=request.mailbox,
            at=workflow.now(),
            send_id=request.send_id,
            requester=request.requester,
            draft=light_draft(self._draft()),
            expires_at=self._expires_at if kind == "approval_requested" else None,
            mode=self._mode,
        )
        # Already started (a reset replayed this step): once is enough.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                NotifyWorkflow.run,
                notice,
                id=notice.notice_id,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"{kind} for {request.send_id}",
            )

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
        if workflow.patched(PROVIDER_WATCH_PATCH):
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
                if late.status in ("pending", "cancelled") or not workflow.patched(HELD_EXPIRY_PATCH):
                    hours = window.total_seconds() / 3600
                    return self._finish("expired", f"the provider's human did not decide within {hours:g} hours")
                outcome = late
                if outcome.status == "pending":  # never (returned above); says so to the type checker
                    continue
            self._held_by_provider = None
            if outcome.status == "sent":
                self._delivered_at = workflow.now()
                return self._finish("sent", f"{outcome.detail}; delivered as {receipt.message_id}")
            return self._finish(outcome.status, outcome.detail)

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
                    outcome = HeldOutcome(status="failed", detail=_failure(err))
            if outcome.status == "pending":
                if workflow.now() < self._expires_at:
                    continue
                late = await self._held_activity(MailActivities.cancel_held, pending_id)
                # The provider's human may have decided after the last look: the cancel's answer says.
                if late.status in ("pending", "cancelled"):
                    hours = self._request.approval_timeout.total_seconds() / 3600
                    return self._finish("expired", f"the provider's human did not decide within {hours:g} hours")
                outcome = late
                if outcome.status == "pending":  # never (returned above); says so to the type checker
                    continue
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
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            return HeldOutcome(status="failed", detail=message)
        return outcome

    @workflow.update
    async def decide(self, decision: Decision) -> SendState:
        # The validator ran before the proof was checked; another decision may have landed since.
        problem = await self._unproven(decision) or self._decision_problem(decision)
        if not problem and self._window_closed() and workflow.patched(EXPIRY_WINS_PATCH):
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
        if not problem and self._window_closed() and workflow.patched(EXPIRY_WINS_PATCH):
            problem = self._window_closed()
        if problem:
            self._event("decision_refused", decision.approver, problem)
            return
        self._apply_decision(decision)

    async def _unproven(self, decision: Decision) -> str | None:
        """Why a decision does not count for want of a front door's proof, or None if it has one.
        Anything that reaches Temporal can signal; only mailgate's front doors can prove."""
        if not workflow.patched(PROOFS_PATCH):
            return None
        if await proven(decision_check(workflow.info().workflow_id, decision)):
            return None
        return f"refused: this decision {NO_PROOF}"

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

    def _draft(self) -> EmailDraft:
        return self._approved or self._request.draft

    def _set_status(self, status: SendStatus) -> None:
        self._status = status
        if status != self._indexed_status:
            self._indexed_status = status
            workflow.upsert_search_attributes([STATUS.value_set(status)])

    def _finish(self, status: SendStatus, reason: str) -> SendState:
        self._reason = reason
        self._set_status(status)
        self._event(status, "mailgate", reason)
        return self._state()

    def _event(self, kind: str, actor: str, detail: str = "") -> None:
        self._events.append(
            AuditEvent(
                at=workflow.now(),
                kind=kind,
                actor=actor,
                detail=detail,
                send_id=self._request.send_id,
                mailbox=self._request.mailbox,
            )
        )

    def _state(self) -> SendState:
        request = self._request
        return SendState(
            send_id=request.send_id,
            mailbox=request.mailbox,
            status=self._status,
            oversight_mode=self._mode,
            requester=request.requester,
            requested_at=request.requested_at,
            message_id=request.message_id,
            original=request.draft.without_contents(),
            approved=self._approved.without_contents() if self._approved else None,
            decision=self._decision,
            expires_at=self._expires_at if self._status == "pending_approval" else None,
            scheduled_for=request.send_at,
            delivered_at=self._delivered_at,
            reason=self._reason,
            events=tuple(self._events),
            from_name=request.from_name,
        )
