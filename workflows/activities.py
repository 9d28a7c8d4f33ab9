"""Activities: the thin, idempotent side effects the workflows ask for.

Every call is safe to repeat: admission is keyed by the send id inside the mailbox
workflow, and delivery by the send's fixed Message-ID.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows.ids import mailbox_workflow_id
from workflows.models import (
    Admission,
    AdmitRequest,
    DeliveryAttempt,
    DeliveryReceipt,
    DeliveryRequest,
    HeldOutcome,
    MailboxConfig,
)
from workflows.policy import judge, needs_the_mailbox
from workflows.providers.base import DeliveryError, ProviderSet


class DeliveryFailed(ApplicationError):
    """The provider refused the email for good; the send ends as failed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type=type(self).__name__, non_retryable=True)


async def _heartbeat(every: float = 2.0) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(every)


class MailActivities:
    def __init__(self, client: Client, providers: ProviderSet) -> None:
        self._client = client
        self._providers = providers

    @activity.defn
    async def admit(self, mailbox: str, request: AdmitRequest) -> Admission:
        """Ask the mailbox, just before delivery, whether this send may go out now.

        The mailbox's current configuration is in its memo; only rate limits and review lists
        need the mailbox workflow itself, which answers through an update (one at a time, so
        counting is exact). Everything else is judged here, without a task on that workflow.
        """
        handle = self._client.get_workflow_handle(mailbox_workflow_id(mailbox))
        try:
            description = await handle.describe()
            published = description.raw_description.workflow_execution_info.memo.fields
            if description.status == WorkflowExecutionStatus.RUNNING and "config" in published:
                config = await description.memo_value("config", type_hint=MailboxConfig)
                if not needs_the_mailbox(config):
                    return judge(config, request, (), datetime.now(UTC))
            update_id = f"admit-{request.send_id}-{request.approved_by or 'unapproved'}"
            admission: Admission = await handle.execute_update("admit", request, id=update_id, result_type=Admission)
            return admission
        except WorkflowUpdateFailedError as err:
            raise ApplicationError(str(err.cause), non_retryable=True) from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return Admission(outcome="blocked", mode="read_only", reason=f"mailbox {mailbox} does not exist")
            raise

    @activity.defn
    async def admit_and_deliver(self, admit: AdmitRequest, request: DeliveryRequest) -> DeliveryAttempt:
        """Admission and delivery in one activity; both are idempotent, so a retry repeats both."""
        admission = await self.admit(request.mailbox, admit)
        if admission.outcome != "ok":
            return DeliveryAttempt(admission=admission)
        return DeliveryAttempt(admission=admission, receipt=await self.deliver(request))

    @activity.defn
    async def deliver(self, request: DeliveryRequest) -> DeliveryReceipt:
        provider = self._providers.for_mailbox(request.mailbox)
        beat = asyncio.create_task(_heartbeat())
        try:
            return await provider.send(request)
        except DeliveryError as err:
            if err.permanent:
                raise DeliveryFailed(str(err)) from err
            raise
        finally:
            beat.cancel()

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
