"""A provider driven by a handler function, for unit tests (like httpx.MockTransport)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from workflows.models import DeliveryReceipt, DeliveryRequest
from workflows.providers.base import EmailProvider

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
