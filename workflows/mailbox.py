"""MailboxWorkflow: one long-lived entity per mailbox, the registry of its oversight.

It holds the mailbox's mode and policies, answers every send's last question before
delivery ("may I go now?") so the mode and rate limits are checked atomically, and keeps
the review list, upgrade requests and mode-change audit. It continues as new as it grows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.activities.proofs import proven
    from workflows.activities.send import MailActivities
    from workflows.mailbox_models import (
        ActionNote,
        Admitted,
        MailboxState,
        Reconfigure,
        ReviewAck,
        ReviewItem,
        UpgradeAsk,
        UpgradeRedeem,
        UpgradeRequest,
        mailbox_memo,
    )
    from workflows.models import (
        SEND_ID_CHARS,
        Admission,
        AdmitBatch,
        AdmitRequest,
        AuditEvent,
        MailboxConfig,
        ModeChange,
        is_looser,
    )
    from workflows.patches import PROOFS_PATCH
    from workflows.policy import DAY, HOUR, judge
    from workflows.trust.proofs import NO_PROOF, Kind, Recent, change_check

HISTORY_LIMIT = 2000
UPGRADE_TTL = timedelta(hours=24)
UPGRADE_MAX_WRONG = 5

# The bounds of everything MailboxState carries across continue-as-new. Temporal refuses a
# payload over 2 MB, and a mailbox whose continue-as-new input is refused stops for good, so
# each collection has a count cap, and the whole state a byte budget (STATE_BUDGET) that
# _fit() enforces at continue-as-new whatever the caps allow. Worst cases (longest ids and
# texts the handlers accept), encoded: admissions ~75 B, unacked reviews ~105 B, acked ~330 B,
# upgrades ~900 B, audit events ~700 B: about 1.37 MB in all
# (tests/workflows/test_mailbox_bounds.py builds that worst case and drives a mailbox past each cap).
#
# admissions: every send let out, for ADMISSIONS_KEPT_FOR (longer than a delivery's retries
#   can last, so a retry gets the same answer) and at most ADMISSIONS_MAX (oldest first; entries
#   inside a rate window go last, so a rate limit up to ADMISSIONS_MAX per window counts exactly).
ADMISSIONS_KEPT_FOR = timedelta(days=2, hours=1)
ADMISSIONS_MAX = 5000
# reviews: unacked ones until acked, at most REVIEWS_KEPT (the oldest are dropped, audited);
#   acked ones for SETTLED_KEPT and at most ACKED_KEPT.
REVIEWS_KEPT = 3000
ACKED_KEPT = 500
SETTLED_KEPT = timedelta(days=7)
# upgrades: at most UPGRADES_PENDING live requests (request_upgrade refuses more), each expiring
#   after UPGRADE_TTL; settled ones (applied, void, expired) for SETTLED_KEPT, at most UPGRADES_SETTLED_KEPT.
UPGRADES_PENDING = 5
UPGRADES_SETTLED_KEPT = 40
# audit: the last AUDIT_KEPT events, each detail at most DETAIL_CHARS.
AUDIT_KEPT = 500
DETAIL_CHARS = 300
# What a handler accepts, so the sizes above hold.
ID_CHARS = SEND_ID_CHARS
ACTOR_CHARS = 200
REASON_CHARS = 500
STATE_BUDGET = 1_500_000


class Refused(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="Refused", non_retryable=True)


def _too_long(what: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise Refused(f"{what} is {len(value)} characters; at most {limit}")


@workflow.defn
class MailboxWorkflow:
    @workflow.init
    def __init__(self, state: MailboxState) -> None:
        self._config = state.config
        self._created_by = state.created_by
        self._created_at = state.created_at
        self._provisioned = state.provisioned
        self._admitted = {a.send_id: a for a in sorted(state.admissions, key=lambda a: a.at)}
        self._reviews = {r.send_id: r for r in state.reviews}
        self._upgrades = {u.request_id: u for u in state.upgrades}
        self._audit = list(state.audit)
        self._proofs = Recent(state.recent_proofs)

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
        workflow.continue_as_new(self._fit())

    @workflow.query
    def describe(self) -> MailboxState:
        return self._snapshot()

    @workflow.update
    async def set_mode(self, change: ModeChange) -> MailboxConfig:
        if is_looser(change.mode, self._config.mode):
            await self._require_proof("mode", change, change.actor)
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
    async def configure(self, change: Reconfigure) -> MailboxConfig:
        """A human's change of policies; the address, provider and mode are not changed here."""
        await self._require_proof("configure", change, change.actor)
        keep = {"address", "provider", "mode"}
        self._config = change.config.model_copy(update={k: getattr(self._config, k) for k in keep})
        self._publish()
        self._record("configured", change.actor, "policies updated")
        return self._config

    @workflow.update
    def admit(self, request: AdmitRequest) -> Admission:
        return self._admit(request, workflow.now())

    @admit.validator
    def _validate_admit(self, request: AdmitRequest) -> None:
        _too_long("send id", request.send_id, ID_CHARS)

    @workflow.update
    def admit_many(self, batch: AdmitBatch) -> tuple[Admission, ...]:
        """Many sends' admissions in one update, judged in order: one task for a whole batch."""
        now = workflow.now()
        return tuple(self._admit(request, now) for request in batch.requests)

    @admit_many.validator
    def _validate_admit_many(self, batch: AdmitBatch) -> None:
        for request in batch.requests:
            _too_long("send id", request.send_id, ID_CHARS)

    def _admit(self, request: AdmitRequest, now: datetime) -> Admission:
        """Judge one send; a send let out once gets the same answer for as long as it may retry."""
        earlier = self._admitted.get(request.send_id)
        if earlier is not None:
            return Admission(outcome="ok", mode=earlier.mode or self._config.mode)
        recent: list[datetime] = []
        if self._config.rate_per_hour or self._config.rate_per_day:
            window = DAY if self._config.rate_per_day else HOUR
            recent = [a.at for a in self._admitted.values() if a.at > now - window]
        admission = judge(self._config, request, recent, now)
        if admission.outcome == "ok":
            self._admitted[request.send_id] = Admitted(send_id=request.send_id, at=now, mode=admission.mode)
            if admission.mode == "monitored":
                self._reviews[request.send_id] = ReviewItem(send_id=request.send_id, at=now)
                self._record("review_added", "mailgate", request.send_id)
            self._prune_admissions(now)
            if len(self._reviews) > REVIEWS_KEPT + ACKED_KEPT:
                self._prune_reviews(now)
        return admission

    @workflow.update
    def record_action(self, note: ActionNote) -> None:
        self._record(note.kind, note.actor, note.detail)

    @record_action.validator
    def _validate_record_action(self, note: ActionNote) -> None:
        _too_long("kind", note.kind, ID_CHARS)
        _too_long("actor", note.actor, ACTOR_CHARS)

    @workflow.update
    def ack_review(self, ack: ReviewAck) -> ReviewItem:
        item = self._reviews[ack.send_id].model_copy(update={"acked_by": ack.actor, "acked_at": workflow.now()})
        self._reviews[ack.send_id] = item
        self._record("review_acked", ack.actor, ack.send_id)
        return item

    @ack_review.validator
    def _validate_ack(self, ack: ReviewAck) -> None:
        _too_long("actor", ack.actor, ACTOR_CHARS)
        item = self._reviews.get(ack.send_id)
        if item is None:
            raise Refused(f"{ack.send_id} is not on the review list of {self._config.address}")
        if item.acked_by is not None:
            raise Refused(f"{ack.send_id} was already reviewed by {item.acked_by}")

    @workflow.update
    def request_upgrade(self, ask: UpgradeAsk) -> UpgradeRequest:
        now = workflow.now()
        self._expire_upgrades(now)
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
        self._prune_upgrades(now)
        return request

    @request_upgrade.validator
    def _validate_request_upgrade(self, ask: UpgradeAsk) -> None:
        _too_long("request id", ask.request_id, ID_CHARS)
        _too_long("requested_by", ask.requested_by, ACTOR_CHARS)
        _too_long("reason", ask.reason, REASON_CHARS)
        if not is_looser(ask.mode, self._config.mode):
            raise Refused(f"{ask.mode} is not looser than {self._config.mode}; use set_oversight_mode to tighten")
        pending = self.pending_upgrades()
        if len(pending) >= UPGRADES_PENDING:
            first = min(u.expires_at for u in pending)
            raise Refused(
                f"{self._config.address} already has {len(pending)} pending upgrade requests, the most it keeps; "
                f"a human answers them with a code, or the oldest expires at {first.isoformat(timespec='seconds')}"
            )

    @workflow.update
    async def redeem_upgrade(self, redeem: UpgradeRedeem) -> MailboxConfig:
        if redeem.request_id is not None:
            await self._require_proof("upgrade", redeem, redeem.actor)
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

    async def _require_proof(self, kind: Kind, change: ModeChange | Reconfigure | UpgradeRedeem, actor: str) -> None:
        """A loosening counts only with a fresh proof from mailgate's front doors (the key stays in
        the worker: an activity checks it). Anything else that reaches Temporal is refused,
        and the refusal is recorded."""
        if not workflow.patched(PROOFS_PATCH):
            return
        now = workflow.now()
        check = change_check(kind, workflow.info().workflow_id, change)
        if self._proofs.admits(change.proof, now) and await proven(check):
            self._proofs.remember(change.proof or "", now)
            return
        self._record("change_refused", actor, f"{kind}: {NO_PROOF}, or it was used before")
        raise Refused(f"{kind} of {self._config.address} refused: {NO_PROOF}, or it was used before")

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
        """Apply every bound of the carried state (see the constants at the top)."""
        self._expire_upgrades(now)
        self._prune_admissions(now)
        self._prune_reviews(now)
        self._prune_upgrades(now)

    def _prune_admissions(self, now: datetime) -> None:
        # Insertion order is admission order, so the oldest are first: they go first, which
        # keeps every rate window's entries as long as a window holds fewer than ADMISSIONS_MAX.
        admitted = self._admitted
        while admitted:
            oldest = next(iter(admitted.values()))
            if oldest.at > now - ADMISSIONS_KEPT_FOR and len(admitted) <= ADMISSIONS_MAX:
                break
            del admitted[oldest.send_id]

    def _prune_reviews(self, now: datetime) -> None:
        unacked = [r for r in self._reviews.values() if r.acked_at is None]
        acked = [r for r in self._reviews.values() if r.acked_at is not None and r.acked_at > now - SETTLED_KEPT]
        unacked.sort(key=lambda r: r.at)
        for dropped in unacked[: max(0, len(unacked) - REVIEWS_KEPT)]:
            self._record("review_dropped", "mailgate", f"{dropped.send_id}: review list over {REVIEWS_KEPT}")
        acked.sort(key=lambda r: r.acked_at or r.at)
        kept = unacked[-REVIEWS_KEPT:] + acked[-ACKED_KEPT:]
        self._reviews = {r.send_id: r for r in sorted(kept, key=lambda r: r.at)}

    def _prune_upgrades(self, now: datetime) -> None:
        settled = [u for u in self._upgrades.values() if u.status != "pending" and u.requested_at > now - SETTLED_KEPT]
        settled = sorted(settled, key=lambda u: u.requested_at)[-UPGRADES_SETTLED_KEPT:]
        pending = [u for u in self._upgrades.values() if u.status == "pending"]
        kept = {u.request_id for u in settled + pending}
        self._upgrades = {k: u for k, u in self._upgrades.items() if k in kept}

    def _fit(self) -> MailboxState:
        """The snapshot to carry over, made to fit STATE_BUDGET: what a reader can best do
        without goes first (settled items, then old audit, then the oldest admissions)."""
        snapshot = self._snapshot()
        converter = workflow.payload_converter()
        while converter.to_payloads([snapshot])[0].ByteSize() > STATE_BUDGET:
            settled_reviews = [k for k, r in self._reviews.items() if r.acked_at is not None]
            settled_upgrades = [k for k, u in self._upgrades.items() if u.status != "pending"]
            if settled_reviews or settled_upgrades:
                for k in settled_reviews:
                    del self._reviews[k]
                for k in settled_upgrades:
                    del self._upgrades[k]
            elif len(self._audit) > 10:
                del self._audit[: len(self._audit) // 2]
            elif self._admitted:
                self._admitted = dict(list(self._admitted.items())[len(self._admitted) // 2 :])
            elif self._reviews:
                self._reviews = dict(list(self._reviews.items())[len(self._reviews) // 2 :])
            else:
                break
            snapshot = self._snapshot()
        return snapshot

    def _record(self, kind: str, actor: str, detail: str = "") -> None:
        event = AuditEvent(
            at=workflow.now(),
            kind=kind,
            actor=actor[:ACTOR_CHARS],
            detail=detail if len(detail) <= DETAIL_CHARS else detail[: DETAIL_CHARS - 1] + "…",
            mailbox=self._config.address,
        )
        self._audit.append(event)
        del self._audit[:-AUDIT_KEPT]

    def _snapshot(self) -> MailboxState:
        return MailboxState(
            config=self._config,
            created_by=self._created_by,
            created_at=self._created_at,
            provisioned=self._provisioned,
            admissions=tuple(self._admitted.values()),
            reviews=tuple(self._reviews.values()),
            upgrades=tuple(self._upgrades.values()),
            audit=tuple(self._audit),
            recent_proofs=self._proofs.proofs(),
        )
