"""What a send knows about itself: its state, its audit events, and the SendState it answers with.

The base of SendEmailWorkflow; the steps in this package are functions over it, so all of them
work on one state, kept in the workflow's memory (its history rebuilds it on replay).
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.metrics import count_send
    from workflows.models import AuditEvent, Decision, EmailDraft, OversightMode, SendRequest, SendState, SendStatus
    from workflows.patches import ONE_MARKER_PATCH
    from workflows.temporal import STATUS


class SendRecord:
    """The send's state, set up from its request when the workflow starts."""

    def __init__(self, request: SendRequest) -> None:
        self._request = request
        # A send that started on code with one-marker-v1 has every earlier send patch: it asks
        # none of them (each would add a marker and a TemporalChangeVersion upsert to its history).
        # Asked here, in the first activation and before any handler or step, so every branch
        # below sees the same answer on replay; histories without the marker ask each as before.
        # Only the patches older than one-marker-v1 may be implied by it (workflows/patches.py).
        self._current = workflow.patched(ONE_MARKER_PATCH)
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
        self._signed_decisions = False  # decisions' signatures are checked in the workflow (send.py)

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
        count_send(status, self._request.mailbox)
        workflow.logger.info("send %s ended %s: %s", self._request.send_id, status, reason)
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
