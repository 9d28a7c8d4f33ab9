"""Handing a send to its provider: the mailbox admits it (mode and rate limits, checked again
just before delivery) and the delivery activity hands it over, in one activity; the send then
ends as the provider answered, or waits when the provider holds it for its own human."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from workflows.activities.send import MailActivities
    from workflows.models import Admission, AdmitRequest, DeliveryReceipt, DeliveryRequest, SendState
    from workflows.patches import PROVIDER_HOLD_PATCH
    from workflows.trust.proofs import warrant_for

from workflows.sending.options import ADMIT_RETRY, DELIVERY_OPTIONS, failure
from workflows.sending.provider_hold import await_provider
from workflows.sending.record import SendRecord


def admit_request(send: SendRecord) -> AdmitRequest:
    return AdmitRequest(
        send_id=send._request.send_id,
        recipients=send._draft().recipients(),
        approved_by=send._decision.approver if send._decision else None,
    )


def delivery_request(send: SendRecord) -> DeliveryRequest:
    return DeliveryRequest(
        send_id=send._request.send_id,
        mailbox=send._request.mailbox,
        from_name=send._request.from_name,
        draft=send._draft(),
        message_id=send._request.message_id,
        date=workflow.now(),
        warrant=warrant_for(send._request, send._decision),
    )


async def admit(send: SendRecord) -> Admission:
    """Histories from before admit-with-delivery: the admission as an activity of its own."""
    return await workflow.execute_activity_method(
        MailActivities.admit,
        args=[send._request.mailbox, admit_request(send)],
        start_to_close_timeout=timedelta(seconds=10),
        retry_policy=ADMIT_RETRY,
    )


async def admit_and_deliver(send: SendRecord) -> tuple[Admission, DeliveryReceipt | str | None]:
    """One activity asks the mailbox and, if it may, delivers: a refusal comes back with no
    receipt, a delivery with its receipt, a permanent failure with the provider's words."""
    try:
        attempt = await workflow.execute_activity_method(
            MailActivities.admit_and_deliver,
            args=[admit_request(send), delivery_request(send)],
            **DELIVERY_OPTIONS,
        )
    except ActivityError as err:
        if isinstance(err.cause, CancelledError):
            send._delivery_cancelled = True
        return Admission(outcome="ok", mode=send._mode), failure(err)
    return attempt.admission, attempt.receipt


async def deliver(send: SendRecord) -> SendState:
    """Histories from before admit-with-delivery: delivery after a separate admission."""
    try:
        receipt = await workflow.execute_activity_method(
            MailActivities.deliver, delivery_request(send), **DELIVERY_OPTIONS
        )
    except ActivityError as err:
        if isinstance(err.cause, CancelledError):
            send._delivery_cancelled = True
        return await settle(send, failure(err))
    return await settle(send, receipt)


async def settle(send: SendRecord, outcome: DeliveryReceipt | str) -> SendState:
    if isinstance(outcome, str):
        if send._delivery_cancelled:
            return send._finish("cancelled", "cancelled through Temporal before the provider accepted it")
        return send._finish("failed", outcome)
    if outcome.held and (send._current or workflow.patched(PROVIDER_HOLD_PATCH)):
        return await await_provider(send, outcome)
    send._delivered_at = workflow.now()
    return send._finish("sent", f"delivered as {outcome.message_id}")
