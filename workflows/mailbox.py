"""MailboxWorkflow: one long-lived entity per mailbox, the registry of its oversight.

It holds the mailbox's mode and policies, answers every send's last question before
delivery ("may I go now?") so the mode and rate limits are checked atomically, and keeps
the review list, upgrade requests and mode-change audit. It continues as new as it grows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.activities import MailActivities
    from workflows.models import (
        Admission,
        AdmitRequest,
        AuditEvent,
        Frozen,
        MailboxConfig,
        ModeChange,
        OversightMode,
        is_looser,
    )
    from workflows.policy import DAY, HOUR, judge

HISTORY_LIMIT = 2000
AUDIT_KEPT = 500
UPGRADE_TTL = timedelta(hours=24)
UPGRADE_MAX_WRONG = 5
SETTLED_KEPT = timedelta(days=7)
REVIEWS_KEPT = 5000


class Admitted(Frozen):
    """A send the mailbox let out, kept only as long as a rate limit or a retry can need it."""

    send_id: str
    at: datetime


class ReviewItem(Frozen):
    send_id: str
    at: datetime
    acked_by: str | None = None
    acked_at: datetime | None = None


class UpgradeRequest(Frozen):
    request_id: str
    mode: OversightMode
    reason: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    wrong_tries: int = 0
    status: Literal["pending", "applied", "void", "expired"] = "pending"

    def as_of(self, now: datetime) -> UpgradeRequest:
        """The request as it stands at `now`: a lapsed one is expired even before the workflow,
        which marks it only when a code is next presented, has written so."""
        if self.status == "pending" and self.expires_at <= now:
            return self.model_copy(update={"status": "expired"})
        return self


class Reconfigure(Frozen):
    config: MailboxConfig
    actor: str


class ReviewAck(Frozen):
    send_id: str
    actor: str


class UpgradeAsk(Frozen):
    request_id: str
    mode: OversightMode
    reason: str
    requested_by: str


class UpgradeRedeem(Frozen):
    """The front door checks the code (it holds the key); the workflow counts tries and applies."""

    request_id: str | None
    actor: str


class MailboxState(Frozen):
    config: MailboxConfig
    created_by: str
    created_at: datetime
    provisioned: bool = False
    admissions: tuple[Admitted, ...] = ()
    reviews: tuple[ReviewItem, ...] = ()
    upgrades: tuple[UpgradeRequest, ...] = ()
    audit: tuple[AuditEvent, ...] = ()


def mailbox_memo(config: MailboxConfig) -> dict[str, Any]:
    return {
        "address": config.address,
        "mode": config.mode,
        "display_name": config.display_name,
        "provider": config.provider,
        "config": config,
    }


class Refused(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="Refused", non_retryable=True)


@workflow.defn
class MailboxWorkflow:
    @workflow.init
    def __init__(self, state: MailboxState) -> None:
        self._config = state.config
        self._created_by = state.created_by
        self._created_at = state.created_at
        self._provisioned = state.provisioned
        self._admitted = {a.send_id: a.at for a in state.admissions}
        self._reviews = {r.send_id: r for r in state.reviews}
        self._upgrades = {u.request_id: u for u in state.upgrades}
        self._audit = list(state.audit)

    @workflow.run
    async def run(self, state: MailboxState) -> None:
        if not self._provisioned:
            await workflow.execute_activity_method(
                MailActivities.provision, self._config, start_to_close_timeout=timedelta(seconds=60)
            )
            self._provisioned = True
            self._record("created", self._created_by, f"mode {self._config.mode}")
        await workflow.wait_condition(
            lambda: (
                workflow.info().is_continue_as_new_suggested()
                or workflow.info().get_current_history_length() > HISTORY_LIMIT
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._prune(workflow.now())
        workflow.continue_as_new(self._snapshot())

    @workflow.query
    def describe(self) -> MailboxState:
        return self._snapshot()

    @workflow.update
    def set_mode(self, change: ModeChange) -> MailboxConfig:
        old = self._config.mode
        if change.mode != old:
            self._config = self._config.model_copy(update={"mode": change.mode})
            self._publish()
            self._record("mode_changed", change.actor, f"{old} -> {change.mode} ({change.role}) {change.reason}")
        return self._config

    @set_mode.validator
    def _validate_set_mode(self, change: ModeChange) -> None:
        if change.role == "agent" and is_looser(change.mode, self._config.mode):
            raise Refused(
                f"{self._config.address} is {self._config.mode}; an agent may only make it stricter. "
                f"To loosen it to {change.mode}, call request_upgrade and ask a human for the code."
            )

    @workflow.update
    def configure(self, change: Reconfigure) -> MailboxConfig:
        """A human's change of policies; the address, provider and mode are not changed here."""
        keep = {"address", "provider", "mode"}
        self._config = change.config.model_copy(update={k: getattr(self._config, k) for k in keep})
        self._publish()
        self._record("configured", change.actor, "policies updated")
        return self._config

    @workflow.update
    def admit(self, request: AdmitRequest) -> Admission:
        now = workflow.now()
        if request.send_id in self._admitted:
            return Admission(outcome="ok", mode=self._config.mode)
        admission = judge(self._config, request, list(self._admitted.values()), now)
        if admission.outcome == "ok":
            self._admitted[request.send_id] = now
            if admission.mode == "monitored":
                self._reviews[request.send_id] = ReviewItem(send_id=request.send_id, at=now)
                self._record("review_added", "mailgate", request.send_id)
        keep = DAY if self._config.rate_per_day else HOUR
        self._admitted = {k: at for k, at in self._admitted.items() if at > now - keep}
        return admission

    @workflow.update
    def ack_review(self, ack: ReviewAck) -> ReviewItem:
        item = self._reviews[ack.send_id].model_copy(update={"acked_by": ack.actor, "acked_at": workflow.now()})
        self._reviews[ack.send_id] = item
        self._record("review_acked", ack.actor, ack.send_id)
        return item

    @ack_review.validator
    def _validate_ack(self, ack: ReviewAck) -> None:
        item = self._reviews.get(ack.send_id)
        if item is None:
            raise Refused(f"{ack.send_id} is not on the review list of {self._config.address}")
        if item.acked_by is not None:
            raise Refused(f"{ack.send_id} was already reviewed by {item.acked_by}")

    @workflow.update
    def request_upgrade(self, ask: UpgradeAsk) -> UpgradeRequest:
        now = workflow.now()
        request = UpgradeRequest(
            request_id=ask.request_id,
            mode=ask.mode,
            reason=ask.reason,
            requested_by=ask.requested_by,
            requested_at=now,
            expires_at=now + UPGRADE_TTL,
        )
        self._upgrades[ask.request_id] = request
        self._record("upgrade_requested", ask.requested_by, f"to {ask.mode}: {ask.reason}")
        return request

    @request_upgrade.validator
    def _validate_request_upgrade(self, ask: UpgradeAsk) -> None:
        if not is_looser(ask.mode, self._config.mode):
            raise Refused(f"{ask.mode} is not looser than {self._config.mode}; use set_oversight_mode to tighten")

    @workflow.update
    def redeem_upgrade(self, redeem: UpgradeRedeem) -> MailboxConfig:
        now = workflow.now()
        self._expire_upgrades(now)
        if redeem.request_id is None:
            for request in self.pending_upgrades():
                tries = request.wrong_tries + 1
                status = "void" if tries >= UPGRADE_MAX_WRONG else "pending"
                self._upgrades[request.request_id] = request.model_copy(update={"wrong_tries": tries, "status": status})
            self._record("upgrade_code_wrong", redeem.actor)
            # Raising would roll back nothing in an update handler, so the count above sticks.
            raise Refused("wrong or expired upgrade code")
        request = self._upgrades[redeem.request_id]
        self._upgrades[request.request_id] = request.model_copy(update={"status": "applied"})
        old = self._config.mode
        self._config = self._config.model_copy(update={"mode": request.mode})
        self._publish()
        self._record("mode_changed", redeem.actor, f"{old} -> {request.mode} (upgrade {request.request_id})")
        return self._config

    @redeem_upgrade.validator
    def _validate_redeem(self, redeem: UpgradeRedeem) -> None:
        if redeem.request_id is None:
            if not self.pending_upgrades():
                raise Refused(f"{self._config.address} has no pending upgrade request; call request_upgrade first")
            return
        request = self._upgrades.get(redeem.request_id)
        if request is None or request.status != "pending" or request.expires_at <= workflow.now():
            raise Refused("wrong or expired upgrade code")

    def pending_upgrades(self) -> list[UpgradeRequest]:
        now = workflow.now()
        return [u for u in self._upgrades.values() if u.status == "pending" and u.expires_at > now]

    def _expire_upgrades(self, now: datetime) -> None:
        for request in list(self._upgrades.values()):
            self._upgrades[request.request_id] = request.as_of(now)

    def _publish(self) -> None:
        """Mirror the configuration into the memo, so front doors read it without a worker."""
        workflow.upsert_memo(mailbox_memo(self._config))

    def _prune(self, now: datetime) -> None:
        """Keep the carried state bounded: settled items go after a while, unread reviews last."""
        self._reviews = {
            k: r for k, r in self._reviews.items() if r.acked_at is None or r.acked_at > now - SETTLED_KEPT
        }
        unacked = sorted((r for r in self._reviews.values() if r.acked_by is None), key=lambda r: r.at)
        for dropped in unacked[: max(0, len(unacked) - REVIEWS_KEPT)]:
            del self._reviews[dropped.send_id]
            self._record("review_dropped", "mailgate", f"{dropped.send_id}: review list over {REVIEWS_KEPT}")
        self._upgrades = {
            k: u for k, u in self._upgrades.items() if u.status == "pending" or u.requested_at > now - SETTLED_KEPT
        }

    def _record(self, kind: str, actor: str, detail: str = "") -> None:
        self._audit.append(
            AuditEvent(at=workflow.now(), kind=kind, actor=actor, detail=detail, mailbox=self._config.address)
        )
        del self._audit[:-AUDIT_KEPT]

    def _snapshot(self) -> MailboxState:
        return MailboxState(
            config=self._config,
            created_by=self._created_by,
            created_at=self._created_at,
            provisioned=self._provisioned,
            admissions=tuple(Admitted(send_id=k, at=at) for k, at in self._admitted.items()),
            reviews=tuple(self._reviews.values()),
            upgrades=tuple(self._upgrades.values()),
            audit=tuple(self._audit),
        )
