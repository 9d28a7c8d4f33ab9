"""BulkTrashWorkflow: a trash of many emails in one call that waits for a human, like a send.

In a gated mailbox, ``manage_email`` with ``trash`` and more ids than ``trash_approval_over``
starts this workflow instead of trashing. It waits (for the mailbox's approval window) for a
decision from a human channel (dashboard, CLI, API as an update; one-click links and Slack as a
signal, which needs no running worker); the approvers are told like for a send (a NotifyWorkflow:
email with one-click links, the approval webhook; a SlackWorkflow with buttons). A decision must
carry a front door's proof (workflows/trust/proofs.py) or it is recorded as refused and the
request keeps waiting. Once approved, one idempotent activity trashes the emails, checking the
request's and the decision's proofs again and claiming the request in the ledger for this run,
so a request started, approved or re-run straight in Temporal trashes nothing.

The workflow id is the request id (``trash-`` + a hash of the mailbox and the ids).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.activities.proofs import proven
    from workflows.models import AuditEvent, Decision, OversightMode
    from workflows.notices import Notice
    from workflows.notify import start_notice
    from workflows.patches import TRASH_NOTICE_PER_RUN_PATCH, TRASH_NOTIFY_PATCH
    from workflows.slack import post_message, settle_message
    from workflows.slack_client.message import SlackOutcome, SlackRequest, SlackStatus
    from workflows.temporal import STATUS
    from workflows.trust.proofs import NO_PROOF, ProofCheck, decision_check, fields_of

TRASH_PREFIX = "trash-"
TrashStatus = Literal["pending_approval", "trashing", "trashed", "rejected", "expired", "blocked"]
TRASH_FINAL: frozenset[str] = frozenset({"trashed", "rejected", "expired", "blocked"})
ANSWER_WITHIN = timedelta(seconds=30)
TRASH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))


class Payload(BaseModel):
    # Tolerates fields a newer release adds (rolling upgrades); frozen like the other payloads.
    model_config = ConfigDict(frozen=True, extra="ignore")


class TrashRequest(Payload):
    request_id: str
    mailbox: str
    email_ids: tuple[str, ...]
    requester: str
    mode: OversightMode
    approvers: tuple[str, ...] = ()
    requested_at: datetime
    approval_timeout: timedelta
    # Whether anyone is to be told (approvers with an email, or the approval webhook), and the
    # mailbox's Slack channel when the server has a Slack app.
    notify: bool = False
    slack_channel: str | None = None
    # The front door's proof for the notice about this request (workflows/trust/notice_proofs.py).
    notice_proof: str | None = None
    # The front door's proof that mailgate itself asked (never a secret).
    proof: str | None = None


def request_check(request: TrashRequest, workflow_id: str) -> ProofCheck:
    """The front door signed the request for its own id: under any other workflow id it fails."""
    return ProofCheck(kind="request", subject=workflow_id, fields=fields_of(request), proof=request.proof)


class TrashOutcome(Payload):
    email_id: str
    ok: bool
    result: str


class TrashJob(Payload):
    """What the activity needs: the request and the decision, both proofs checked again there."""

    request: TrashRequest
    decision: Decision


class TrashDone(Payload):
    outcomes: tuple[TrashOutcome, ...] = ()
    refused: str = ""  # why nothing was trashed (a proof that does not hold, a read_only mailbox)


class TrashState(Payload):
    request_id: str
    mailbox: str
    email_ids: tuple[str, ...]
    status: TrashStatus
    requester: str
    requested_at: datetime
    expires_at: datetime | None = None
    decision: Decision | None = None
    outcomes: tuple[TrashOutcome, ...] = ()
    reason: str = ""
    events: tuple[AuditEvent, ...] = Field(default=())


class TrashRefused(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="DecisionRefused", non_retryable=True)


@workflow.defn
class BulkTrashWorkflow:
    @workflow.init
    def __init__(self, request: TrashRequest) -> None:
        self._request = request
        self._status: TrashStatus = "pending_approval"
        self._decision: Decision | None = None
        self._outcomes: tuple[TrashOutcome, ...] = ()
        self._reason = ""
        self._events: list[AuditEvent] = []
        self._expires_at = request.requested_at + request.approval_timeout
        self._seen_decision_ids: set[str] = set()
        self._slack_id: str | None = None

    @workflow.run
    async def run(self, request: TrashRequest) -> TrashState:
        self._event("requested", request.requester, f"trash {len(request.email_ids)} emails")
        if not await proven(request_check(request, workflow.info().workflow_id)):
            return self._finish("blocked", f"refused: the request {NO_PROOF}")
        if workflow.patched(TRASH_NOTIFY_PATCH):
            await self._announce()
        wait = max(self._expires_at - workflow.now(), timedelta(seconds=1))
        try:
            await workflow.wait_condition(lambda: self._decision is not None, timeout=wait)
        except TimeoutError:
            hours = request.approval_timeout.total_seconds() / 3600
            await self._settle_slack("expired")
            return self._finish("expired", f"nobody decided within {hours:g} hours; nothing was trashed")
        decision = self._decision
        assert decision is not None
        await self._settle_slack("rejected" if decision.decision == "reject" else "trashing")
        if decision.decision == "reject":
            return self._finish("rejected", decision.reason or "")
        self._set_status("trashing")
        done: TrashDone = await workflow.execute_activity(
            "trash_emails",
            TrashJob(request=request, decision=decision),
            result_type=TrashDone,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=TRASH_RETRY,
        )
        if done.refused:
            return self._finish("blocked", done.refused)
        self._outcomes = done.outcomes
        moved = sum(1 for o in done.outcomes if o.ok)
        return self._finish("trashed", f"{moved} of {len(done.outcomes)} emails moved to the trash")

    @workflow.update
    async def decide(self, decision: Decision) -> TrashState:
        problem = await self._take(decision)
        if problem:
            raise TrashRefused(problem)
        # Answer with the outcome when it comes soon (up to 100 moves); else with "trashing".
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._status in TRASH_FINAL, timeout=ANSWER_WITHIN)
        return self._state()

    @decide.validator
    def _validate_decide(self, decision: Decision) -> None:
        problem = self._problem(decision)
        if problem:
            raise TrashRefused(problem)

    @workflow.signal
    async def decide_signal(self, decision: Decision) -> None:
        """The same decision as `decide`, for channels that cannot wait for a worker (links, Slack)."""
        if decision.decision_id is not None:
            if decision.decision_id in self._seen_decision_ids:
                return  # a link used twice, a retried webhook: taken once
            self._seen_decision_ids.add(decision.decision_id)
        await self._take(decision)  # a refusal is in the audit events: a signal answers nobody

    @workflow.query
    def state(self) -> TrashState:
        return self._state()

    async def _take(self, decision: Decision) -> str | None:
        """Check a decision (the rules, then its proof) and record it: why it was refused, or None."""
        problem = self._problem(decision)
        if problem is None and not await proven(decision_check(workflow.info().workflow_id, decision)):
            problem = f"refused: this decision {NO_PROOF}"
        problem = problem or self._problem(decision)  # another decision may have landed meanwhile
        if problem:
            self._event("decision_refused", decision.approver, problem)
            return problem
        self._decision = decision.model_copy(update={"decided_at": workflow.now()})
        verb = "approved" if decision.decision == "approve" else "rejected"
        self._event(verb, decision.approver, f"via {decision.channel}: {decision.reason or ''}".strip(": "))
        return None

    def _problem(self, decision: Decision) -> str | None:
        request = self._request
        if self._decision is not None:
            done = self._decision
            verb = "approved" if done.decision == "approve" else "rejected"
            return f"trash request {request.request_id} was already {verb} by {done.approver}"
        if self._status != "pending_approval":
            return f"trash request {request.request_id} is {self._status}; there is nothing to decide"
        if workflow.now() >= self._expires_at:
            return f"trash request {request.request_id}: the approval window closed; it expires undecided"
        if decision.edits is not None:
            return "a trash request takes no edits; approve or reject it as it is"
        approver = decision.approver.strip().lower()
        if approver == request.requester.strip().lower():
            return f"{decision.approver} asked for this trash and may not decide it"
        approvers = [a.lower() for a in request.approvers]
        if approvers and approver not in approvers:
            return f"{decision.approver} is not an approver of {request.mailbox}"
        return None

    def _set_status(self, status: TrashStatus) -> None:
        self._status = status
        workflow.upsert_search_attributes([STATUS.value_set(status)])

    async def _announce(self) -> None:
        """Tell the approvers (email, webhook) and post to Slack: abandoned children, like a send's."""
        request = self._request
        if request.notify:
            notice_id = f"notify-{request.request_id}-requested"
            if workflow.patched(TRASH_NOTICE_PER_RUN_PATCH):
                # Asked again after it expired, the request keeps its id: this run's notice must not
                # share the earlier one's id and Message-ID (receivers drop those as duplicates).
                notice_id += f"-{request.requested_at:%Y%m%dt%H%M%S%f}"
            notice = Notice(
                notice_id=notice_id,
                kind="trash_requested",
                mailbox=request.mailbox,
                at=workflow.now(),
                requester=request.requester,
                expires_at=self._expires_at,
                mode=request.mode,
                trash_request_id=request.request_id,
                email_count=len(request.email_ids),
                proof=request.notice_proof,
            )
            await start_notice(notice, f"trash_requested for {request.request_id}")
        if request.slack_channel:
            message = SlackRequest(
                send_id=request.request_id,
                mailbox=request.mailbox,
                channel=request.slack_channel,
                requester=request.requester,
                expires_at=self._expires_at,
                trash_count=len(request.email_ids),
            )
            slack_id = f"slack-{request.request_id}"
            await post_message(message, slack_id)
            self._slack_id = slack_id

    async def _settle_slack(self, status: TrashStatus) -> None:
        """Tell the Slack message how the request ended; a message that is gone changes nothing here."""
        if self._slack_id is None:
            return
        decision = self._decision
        settled: SlackStatus = "expired" if status == "expired" else "approved"
        if decision is not None and decision.decision == "reject":
            settled = "rejected"
        by = decision.approver if decision is not None else "mailgate"
        reason = (decision.reason or "") if decision is not None else ""
        outcome = SlackOutcome(status=settled, by=by, at=workflow.now(), reason=reason)
        await settle_message(self._slack_id, outcome)

    def _finish(self, status: TrashStatus, reason: str) -> TrashState:
        self._reason = reason
        self._set_status(status)
        self._event(status, "mailgate", reason)
        return self._state()

    def _event(self, kind: str, actor: str, detail: str = "") -> None:
        at = workflow.now()
        self._events.append(
            AuditEvent(at=at, kind=kind, actor=actor, detail=detail[:300], mailbox=self._request.mailbox)
        )

    def _state(self) -> TrashState:
        request = self._request
        return TrashState(
            request_id=request.request_id,
            mailbox=request.mailbox,
            email_ids=request.email_ids,
            status=self._status,
            requester=request.requester,
            requested_at=request.requested_at,
            expires_at=self._expires_at if self._status == "pending_approval" else None,
            decision=self._decision,
            outcomes=self._outcomes,
            reason=self._reason,
            events=tuple(self._events),
        )


def summary_memo(request: TrashRequest) -> dict[str, Any]:
    """What a listing shows without asking a worker."""
    return {"mailbox": request.mailbox, "count": len(request.email_ids), "requester": request.requester}
