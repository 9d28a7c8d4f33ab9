"""The one interface every mail backend implements.

Shaped like httpx's transports: a small abstract base with a few methods, real
implementations beside it, and a handler-driven fake for unit tests (``fake.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from workflows.models import DeliveryReceipt, DeliveryRequest


class DeliveryError(Exception):
    """A delivery that did not happen. Temporary ones are retried; permanent ones fail the send."""

    permanent: bool = False


class TemporaryDeliveryError(DeliveryError):
    """The provider is down or said "try later" (SMTP 4xx); the activity retries with backoff."""


class PermanentDeliveryError(DeliveryError):
    """The provider refused the message for good (SMTP 5xx); the send ends as ``failed``."""

    permanent = True


class EmailProvider(ABC):
    """A place that sends mail for some mailboxes and holds what they receive."""

    name: str = "provider"

    @abstractmethod
    async def send(self, request: DeliveryRequest) -> DeliveryReceipt:
        """Deliver once. Calling again with the same ``request.message_id`` must not deliver twice
        where the backend can tell (the sandbox always can; SMTP only with the Sent-folder check)."""

    async def create_mailbox(self, address: str) -> None:  # noqa: B027 - optional for providers
        """Make the mailbox exist at the provider, if the provider has such a thing."""

    async def aclose(self) -> None:  # noqa: B027 - optional for providers
        """Release connections."""


class ProviderSet:
    """Which provider serves which mailbox: configured ones by address, the rest by default."""

    def __init__(self, default: EmailProvider, by_address: dict[str, EmailProvider] | None = None) -> None:
        self.default = default
        self._by_address = {k.lower(): v for k, v in (by_address or {}).items()}

    def for_mailbox(self, address: str) -> EmailProvider:
        return self._by_address.get(address.lower(), self.default)

    async def aclose(self) -> None:
        for provider in {id(p): p for p in [self.default, *self._by_address.values()]}.values():
            await provider.aclose()
