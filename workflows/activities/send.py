"""Activities: the thin, idempotent side effects the workflows ask for.

Every call is safe to repeat: admission is keyed by the send id inside the mailbox
workflow, and delivery by the send's fixed Message-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows.activities.admission import AdmissionBatcher
from workflows.ids import mailbox_workflow_id
from workflows.metrics import count_provider_error
from workflows.models import (
    Admission,
    AdmitRequest,
    DeliveryAttempt,
    DeliveryReceipt,
    DeliveryRequest,
    HeldOutcome,
    MailboxConfig,
    OversightMode,
)
from workflows.policy import DAY, judge, needs_the_mailbox
from workflows.providers.base import DeliveryError, ProviderSet
from workflows.trust.ledger import LocalLedger, stricter_admission, verified_config
from workflows.trust.proofs import warrant_problem


class DeliveryFailed(ApplicationError):
    """The provider refused the email for good; the send ends as failed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type=type(self).__name__, non_retryable=True)


async def _heartbeat(details: list[Any], every: float = 2.0) -> None:
    # Temporal sends an attempt's first heartbeat at once and throttles the next ones; waiting
    # a little first lets a quick admission be that first heartbeat, recorded straight away.
    await asyncio.sleep(every / 2)
    while True:
        activity.heartbeat(*details)
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def _beating(details: list[Any] | None = None) -> AsyncIterator[list[Any]]:
    """Heartbeat for as long as the block runs (the whole attempt, admission included), with
    the details the block puts in the list: a retry finds the last ones that reached Temporal."""
    details = [] if details is None else details
    beat = asyncio.create_task(_heartbeat(details))
    try:
        yield details
    finally:
        beat.cancel()


async def send_once(
    send: Callable[[], Awaitable[DeliveryReceipt]], details: list[Any] | None = None
) -> DeliveryReceipt:
    """Hand one email over (``send`` does it) at most once per activity, inside ``_beating``.

    A cancel (from Temporal, or a worker that stops past its graceful timeout) never interrupts
    a hand-over that began: an SMTP session cut after DATA may have delivered, and the retry would
    deliver again. The send finishes (``send`` keeps its own time limit) and its receipt is
    returned; only if it did not go out is the cancel honoured. The receipt joins the heartbeat
    ``details``: Temporal gives it to the next attempt, so a retry after a crash that came before
    this attempt could report returns it instead of sending again, on any channel (also one, like
    plain SMTP, that cannot be asked what it took).
    """
    earlier = _heartbeated_receipt()
    if earlier is not None:
        return earlier
    sending = asyncio.ensure_future(send())
    try:
        receipt = await asyncio.shield(sending)
    except asyncio.CancelledError:
        try:
            receipt = await sending
        except DeliveryError as err:
            if err.ambiguous:
                raise  # it may have gone out: not "cancelled"; a retry's Sent check can tell
            raise asyncio.CancelledError from None  # it did not go out: the cancel stands
        except DeliveryFailed:
            raise asyncio.CancelledError from None  # refused for good: nothing went out
    details = [] if details is None else details
    details.append(receipt.model_dump(mode="json"))
    activity.heartbeat(*details)
    return receipt


def _heartbeated_receipt() -> DeliveryReceipt | None:
    """The receipt an earlier attempt of this activity heartbeated, if it got that far."""
    for detail in activity.info().heartbeat_details:
        with contextlib.suppress(ValueError, TypeError):
            return DeliveryReceipt.model_validate(detail)
    return None


def _earlier_admission() -> Admission | None:
    """The admission an earlier attempt of this activity got and recorded in its heartbeat."""
    recorded = activity.info().heartbeat_details
    if not recorded:
        return None
    try:
        return Admission.model_validate(recorded[0])
    except ValidationError:
        return None


# Stop an attempt this long before Temporal would time it out: the server then gives the
# activity to a new attempt, and the old one must be over by then, or both could deliver.
ATTEMPT_MARGIN = timedelta(seconds=5)
# A delivery is not begun with less time than this left in the attempt; the next attempt has its full time.
DELIVERY_MIN = timedelta(seconds=20)


def _attempt_deadline() -> float | None:
    """The event-loop time by which this attempt must be done, or None when nothing times it out.

    Measured from when the attempt started here, with the worker's own clock (the server's
    clock may differ): Temporal's start-to-close timer started a little earlier, hence the margin.
    """
    info = activity.info()
    budgets = [t for t in (info.start_to_close_timeout,) if t]
    if info.schedule_to_close_timeout:
        budgets.append(info.scheduled_time + info.schedule_to_close_timeout - info.started_time)
    if not budgets:
        return None
    return asyncio.get_running_loop().time() + (min(budgets) - ATTEMPT_MARGIN).total_seconds()


class AttemptTimedOut(ApplicationError):
    """This attempt ran out of time before it could safely deliver; Temporal retries it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type=type(self).__name__)


class MailActivities:
    def __init__(
        self, client: Client, providers: ProviderSet, proof_key: bytes, ledger: LocalLedger | None = None
    ) -> None:
        self._client = client
        self._providers = providers
        self._admissions = AdmissionBatcher(client)
        self._proof_key = proof_key
        # Outside Temporal: sends handed over, mailbox configurations the front doors set
        # (workflows/trust/ledger.py). None only in tests that run workflows without front doors.
        self._ledger = ledger

    def _unwarranted(self, request: DeliveryRequest, mode_now: OversightMode | None = None) -> Admission | None:
        """A refusal unless mailgate's front doors requested (and, if it needs one, a person approved)
        exactly this email: a workflow started or signalled straight in Temporal delivers nothing."""
        submitted = request.warrant.mode if request.warrant else "read_only"
        mode = mode_now or submitted
        problem = warrant_problem(self._proof_key, request, activity.info().workflow_id or "", mode)
        if problem is None:
            return None
        activity.logger.warning("refused to deliver %s: %s", request.send_id, problem)
        return Admission(outcome="blocked", mode=mode, reason=f"refused: {problem}")

    async def _handed_over(self, request: DeliveryRequest, *, claim: bool) -> Admission | None:
        """A refusal when another run of this send's workflow already claimed its delivery (a
        re-run or reset of a finished send, with its recorded request and approval). ``claim``:
        claim it for this run now, just before the hand-over; a retry of this run keeps it."""
        if self._ledger is None:
            return None
        run_id = activity.info().workflow_run_id or ""
        if claim:
            at = datetime.now(UTC)
            args = (request.send_id, run_id, request.mailbox, at)
            problem = await asyncio.to_thread(self._ledger.claim_delivery, *args)
        else:
            problem = await asyncio.to_thread(self._ledger.delivery_problem, request.send_id, run_id)
        if problem is None:
            return None
        activity.logger.warning("refused to deliver %s: %s", request.send_id, problem)
        mode = request.warrant.mode if request.warrant else "read_only"
        return Admission(outcome="blocked", mode=mode, reason=f"refused: {problem}")

    @activity.defn
    async def admit(self, mailbox: str, request: AdmitRequest) -> Admission:
        """Ask the mailbox, just before delivery, whether this send may go out now.

        The mailbox's current configuration is in its memo; only rate limits and review lists
        need the mailbox workflow itself, which answers through an update (one at a time, so
        counting is exact; many sends in one, see workflows/activities/admission.py). Everything else is
        judged here, without a task on that workflow.
        """
        handle = self._client.get_workflow_handle(mailbox_workflow_id(mailbox))
        config: MailboxConfig | None = None
        try:
            description = await handle.describe()
            published = description.raw_description.workflow_execution_info.memo.fields
            if description.status == WorkflowExecutionStatus.RUNNING and "config" in published:
                config = await description.memo_value("config", type_hint=MailboxConfig)
                if not needs_the_mailbox(config):
                    return await self._checked(mailbox, request, judge(config, request, (), datetime.now(UTC)), config)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return Admission(outcome="blocked", mode="read_only", reason=f"mailbox {mailbox} does not exist")
            raise
        return await self._checked(mailbox, request, await self._admissions.admit(mailbox, request), config)

    async def _checked(
        self, mailbox: str, request: AdmitRequest, admission: Admission, live: MailboxConfig | None
    ) -> Admission:
        """The mailbox workflow's answer, made stricter where the configuration mailgate's front
        doors recorded says so: a mailbox workflow forged in Temporal cannot loosen a send."""
        if self._ledger is None or admission.outcome == "blocked":
            return admission
        ledger = self._ledger
        recorded = await asyncio.to_thread(ledger.mailbox_config, mailbox)
        base = live or recorded
        if base is None:
            reason = f"refused: mailbox {mailbox} has no configuration recorded by mailgate's front doors"
            return Admission(outcome="blocked", mode="read_only", reason=reason)
        config, problem = verified_config(recorded, base)
        now = datetime.now(UTC)
        sent = await asyncio.to_thread(ledger.deliveries_since, mailbox, now - DAY, request.send_id)
        if problem:
            activity.logger.warning("admission of %s: %s; going by mailgate's record", request.send_id, problem)
        return stricter_admission(admission, judge(config, request, sent, now), problem)

    @activity.defn
    async def admit_and_deliver(self, admit: AdmitRequest, request: DeliveryRequest) -> DeliveryAttempt:
        """Admission and delivery in one activity; both are idempotent, so a retry repeats both
        (the mailbox gives a send it let out the same answer again)."""
        refused = self._unwarranted(request) or await self._handed_over(request, claim=False)
        if refused is not None:
            return DeliveryAttempt(admission=refused)
        deadline = _attempt_deadline()
        async with _beating() as details:
            # Same send, same answer: a retry goes with what an earlier attempt was told (the
            # mailbox also remembers it; this holds when the answer came from the memo alone).
            admission = _earlier_admission()
            if admission is None:
                limit = asyncio.timeout_at(None if deadline is None else deadline - DELIVERY_MIN.total_seconds())
                try:
                    async with limit:
                        admission = await self.admit(request.mailbox, admit)
                except TimeoutError:
                    if not limit.expired():
                        raise
                    raise AttemptTimedOut("the mailbox did not answer in time; a new attempt asks again") from None
            if admission.outcome != "ok":
                return DeliveryAttempt(admission=admission)
            # A mailbox gated since submission needs a person's approval, whatever the workflow says.
            refused = self._unwarranted(request, admission.mode) or await self._handed_over(request, claim=True)
            if refused is not None:
                return DeliveryAttempt(admission=refused)
            details.append(admission)
            activity.heartbeat(admission)
            receipt = await send_once(lambda: self._send(request, deadline), details)
            return DeliveryAttempt(admission=admission, receipt=receipt)

    @activity.defn
    async def deliver(self, request: DeliveryRequest) -> DeliveryReceipt:
        refused = self._unwarranted(request) or await self._handed_over(request, claim=True)
        if refused is not None:
            raise DeliveryFailed(refused.reason)
        deadline = _attempt_deadline()
        async with _beating() as details:
            return await send_once(lambda: self._send(request, deadline), details)

    async def _send(self, request: DeliveryRequest, deadline: float | None) -> DeliveryReceipt:
        """Deliver within this attempt's time, so it is over before Temporal starts another."""
        provider = self._providers.for_mailbox(request.mailbox)
        limit = asyncio.timeout_at(deadline)
        try:
            async with limit:
                return await provider.send(request)
        except TimeoutError:
            if not limit.expired():
                raise  # the provider's own timeout, not this attempt's
            raise AttemptTimedOut("delivery did not finish within the attempt's time; a new attempt tries") from None
        except DeliveryError as err:
            count_provider_error(provider.name, err.permanent)
            if err.permanent:
                raise DeliveryFailed(str(err)) from err
            raise

    @activity.defn
    async def held_outcome(self, mailbox: str, provider_id: str) -> HeldOutcome:
        """Has the provider's own human decided on a message it holds? (Polling; read-only.)"""
        try:
            return await self._providers.for_mailbox(mailbox).held_outcome(mailbox, provider_id)
        except DeliveryError as err:
            if err.permanent:
                raise DeliveryFailed(str(err)) from err
            raise

    @activity.defn
    async def watch_held(self, mailbox: str, provider_id: str, every_seconds: float, until: datetime) -> HeldOutcome:
        """Poll a held message every ``every_seconds`` until its human decides or ``until`` passes
        (then "pending"). One long activity, heartbeating, instead of a timer per poll in history."""
        provider = self._providers.for_mailbox(mailbox)
        while True:
            try:
                outcome = await provider.held_outcome(mailbox, provider_id)
            except DeliveryError as err:
                if err.permanent:
                    raise DeliveryFailed(str(err)) from err
                outcome = None  # unreachable for now: ask again at the next poll
            if outcome is not None and outcome.status != "pending":
                return outcome
            left = (until - datetime.now(UTC)).total_seconds()
            if left <= 0:
                return outcome or HeldOutcome(status="pending", detail="the provider did not answer")
            wake = asyncio.get_running_loop().time() + min(max(every_seconds, 1.0), left)
            while (now := asyncio.get_running_loop().time()) < wake:
                # The note (a status mailgate does not know) rides on the heartbeat: the front door
                # shows it while the send waits, and the workflow's history does not change.
                activity.heartbeat(outcome.note if outcome else "")
                try:
                    await asyncio.wait_for(activity.wait_for_worker_shutdown(), min(5.0, wake - now))
                except TimeoutError:
                    continue
                # This worker stops: end the watch now (still pending), and another worker's takes over.
                return outcome or HeldOutcome(status="pending", detail="the worker stopped")

    @activity.defn
    async def cancel_held(self, mailbox: str, provider_id: str) -> HeldOutcome:
        """Withdraw a held message at the provider (idempotent there: cancelling twice is fine)."""
        try:
            return await self._providers.for_mailbox(mailbox).cancel_held(mailbox, provider_id)
        except DeliveryError as err:
            if err.permanent:
                raise DeliveryFailed(str(err)) from err
            raise

    @activity.defn
    async def provision(self, config: MailboxConfig) -> None:
        await self._providers.for_mailbox(config.address).create_mailbox(config.address)
