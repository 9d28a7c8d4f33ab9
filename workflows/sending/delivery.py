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
from workflows.sending.provider_hold import ProviderHold


class Delivery(ProviderHold):
    """Admission and delivery, and what the provider's answer makes of the send."""

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
            return Admission(outcome="ok", mode=self._mode), failure(err)
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
            return await self._settle(failure(err))
        return await self._settle(receipt)

    async def _settle(self, outcome: DeliveryReceipt | str) -> SendState:
        if isinstance(outcome, str):
            if self._delivery_cancelled:
                return self._finish("cancelled", "cancelled through Temporal before the provider accepted it")
            return self._finish("failed", outcome)
        if outcome.held and (self._current or workflow.patched(PROVIDER_HOLD_PATCH)):
            return await self._await_provider(outcome)
        self._delivered_at = workflow.now()
        return self._finish("sent", f"delivered as {outcome.message_id}")
