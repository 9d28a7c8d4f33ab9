"""A provider driven by a handler function, for unit tests (like httpx.MockTransport)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from workflows.models import DeliveryReceipt, DeliveryRequest
from workflows.providers.base import EmailNotFound, EmailProvider
from workflows.read_models import Changes, EmailChange, EmailPage, EmailQuery, EmailSummary, StoredEmail

Handler = Callable[[DeliveryRequest], Awaitable[DeliveryReceipt] | DeliveryReceipt]


class FakeProvider(EmailProvider):
    name = "fake"

    def __init__(self, handler: Handler | None = None) -> None:
        self._handler = handler
        self.sent: list[DeliveryRequest] = []

    async def send(self, request: DeliveryRequest) -> DeliveryReceipt:
        self.sent.append(request)
        if self._handler is None:
            return DeliveryReceipt(message_id=request.message_id)
        result = self._handler(request)
        return result if isinstance(result, DeliveryReceipt) else await result

    # The fake only sends: its mailboxes are always empty.

    async def list_emails(self, mailbox: str, query: EmailQuery) -> EmailPage:
        return EmailPage(emails=())

    async def fetch_email(self, mailbox: str, email_id: str, *, include_held: bool = False) -> StoredEmail:
        raise EmailNotFound(email_id)

    async def change_email(self, mailbox: str, email_id: str, change: EmailChange, actor: str) -> EmailSummary:
        raise EmailNotFound(email_id)

    async def changes(self, mailbox: str, cursor: str | None, limit: int = 100) -> Changes:
        return Changes(emails=(), cursor=cursor or "0")
