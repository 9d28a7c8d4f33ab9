"""The one interface every mail backend implements.

Shaped like httpx's transports: a small abstract base with a few methods, real
implementations beside it, and a handler-driven fake for unit tests (``fake.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from workflows.errors import Door, MailgateError
from workflows.models import DeliveryReceipt, DeliveryRequest, HeldOutcome
from workflows.read_models import Action, Changes, EmailChange, EmailPage, EmailQuery, EmailSummary, StoredEmail


class DeliveryError(Exception):
    """A delivery that did not happen. Temporary ones are retried; permanent ones fail the send."""

    permanent: bool = False
    # The provider may have accepted the message all the same (an SMTP connection lost during DATA).
    ambiguous: bool = False


class TemporaryDeliveryError(DeliveryError):
    """The provider is down or said "try later" (SMTP 4xx); the activity retries with backoff."""


class PermanentDeliveryError(DeliveryError):
    """The provider refused the message for good (SMTP 5xx); the send ends as ``failed``."""

    permanent = True


class EmailNotFound(LookupError):
    """No such email in that mailbox (or it is held for a human, and so invisible to agents)."""


class InboundHooks(Protocol):
    """What a provider asks mailgate about mail it receives (implemented over Temporal)."""

    async def holds(self, mailbox: str) -> bool:
        """Must new mail to this mailbox be held for a human (``gated_all``)? May raise when unsure."""
        ...

    async def arrived(self, mailboxes: list[str], since: str | None = None) -> None:
        """New mail became visible in these mailboxes: wake their watchers (starting one that does
        not run yet at cursor ``since``, taken just before the mail, so it sees that mail too)."""
        ...


class NoHooks:
    """Nothing is held, nobody is told: for tests and tools that use a provider alone."""

    async def holds(self, mailbox: str) -> bool:
        return False

    async def arrived(self, mailboxes: list[str], since: str | None = None) -> None:
        return None


class EmailProvider(ABC):
    """A place that sends mail for some mailboxes and holds what they receive.

    The read side is four methods. Email ids and cursors are the provider's own opaque
    strings. Mail held for a human is invisible to every read unless a query asks for it.
    Providers that discover mail late (IMAP) ask ``InboundHooks.holds`` when they first see it.
    """

    name: str = "provider"

    @property
    def has_inbox(self) -> bool:
        """False for a send-only mailbox (an SMTP relay with no IMAP): every read refuses."""
        return True

    @abstractmethod
    async def send(self, request: DeliveryRequest) -> DeliveryReceipt:
        """Deliver once. Calling again with the same ``request.message_id`` must not deliver twice
        where the backend can tell (the sandbox always can; SMTP only with the Sent-folder check)."""

    @abstractmethod
    async def list_emails(self, mailbox: str, query: EmailQuery) -> EmailPage:
        """Emails matching the query, newest first unless ``oldest_first``; paginated by cursor."""

    @abstractmethod
    async def fetch_email(self, mailbox: str, email_id: str, *, include_held: bool = False) -> StoredEmail:
        """One email with its original bytes; raises EmailNotFound."""

    @abstractmethod
    async def change_email(self, mailbox: str, email_id: str, change: EmailChange, actor: str) -> EmailSummary:
        """Mark read, or release or discard mail held for a human; raises EmailNotFound."""

    @abstractmethod
    async def changes(self, mailbox: str, cursor: str | None, limit: int = 100) -> Changes:
        """Mail that became visible after ``cursor``, oldest first. With no cursor: nothing, and
        a cursor at the present (a new watcher reacts to new mail, not to the whole history)."""

    async def search(self, mailbox: str, query: str, limit: int, cursor: str | None) -> EmailPage:
        """Mail matching the search syntax (workflows/mail/search_query.py), best match first. Raises
        ValueError for bad syntax or what this provider cannot search for (the message says which)."""
        raise ValueError(f"{self.name} mailboxes cannot be searched; check_inbox lists their mail")

    async def manage(self, mailbox: str, email_id: str, action: Action, target: str | None, actor: str) -> str:
        """Archive, move (to folder ``target``), label/unlabel (label ``target``), mark read or
        unread, or trash one email; returns what happened. Never deletes. Raises EmailNotFound,
        or ValueError when this provider has no such action."""
        raise ValueError(f"{self.name} mailboxes cannot {action.replace('_', ' ')} mail")

    async def is_trash(self, mailbox: str, folder: str) -> bool:
        """Whether a move to ``folder`` is a trash: the folder named trash (any case), or the one
        the provider keeps as its trash under another name. ValueError when it cannot tell now."""
        return folder.strip().lower() == "trash"

    def unsupported(self, action: Action) -> str | None:
        """Why this provider can do ``action`` to no email at all (with what to do instead), or None.
        Asked before any email is looked at, so a refusal reveals nothing and waits for no human."""
        return None

    # Drafts the agent made, for a human to edit and send from their own mail client.

    async def save_draft(self, mailbox: str, raw: bytes, draft_id: str | None = None) -> str:
        """Save a new draft (or replace draft ``draft_id``); returns its id. ValueError if unsupported."""
        raise ValueError(f"{self.name} mailboxes keep no drafts for mailgate; durable_send sends through oversight")

    async def drafts(self, mailbox: str, limit: int = 100) -> list[EmailSummary]:
        """The drafts the agent made, newest first."""
        return []

    async def draft(self, mailbox: str, draft_id: str) -> StoredEmail:
        raise EmailNotFound(f"no draft {draft_id} in mailbox {mailbox}")

    async def delete_draft(self, mailbox: str, draft_id: str) -> None:
        raise EmailNotFound(f"no draft {draft_id} in mailbox {mailbox}")

    async def find_reply(self, mailbox: str, message_id: str) -> EmailSummary | None:
        """The first inbound email in the thread of our sent ``message_id`` that came after it."""
        sent = await self.list_emails(mailbox, EmailQuery(folder="sent", message_id=message_id, limit=1))
        if not sent.emails:
            return None
        mine = sent.emails[0]
        thread = await self.list_emails(
            mailbox, EmailQuery(folder="inbox", thread_id=mine.thread_id, oldest_first=True, limit=1000)
        )
        for email in thread.emails:
            if email.received_at >= mine.received_at and email.message_id != message_id:
                return email
        return None

    async def fetch_attachment(self, mailbox: str, email_id: str, index: int) -> bytes | None:
        """The content of attachment ``index`` (1-based, as parsed from ``fetch_email``'s bytes), for
        providers that leave it out of those bytes; None means it is in them. Raises EmailNotFound."""
        return None

    async def create_mailbox(self, address: str) -> None:  # noqa: B027 - optional for providers
        """Make the mailbox exist at the provider, if the provider has such a thing."""

    async def held_outcome(self, mailbox: str, provider_id: str) -> HeldOutcome:
        """For a receipt with ``held``: has the provider's human decided? Only such providers answer."""
        raise PermanentDeliveryError(f"{self.name} holds no messages for approval")

    async def cancel_held(self, mailbox: str, provider_id: str) -> HeldOutcome:
        """Withdraw a held message before its human decides; the outcome says what happened."""
        raise PermanentDeliveryError(f"{self.name} holds no messages for approval")

    async def start(self) -> None:  # noqa: B027 - optional for providers
        """Begin background work (an IMAP IDLE connection) in a process that runs for a while."""

    async def aclose(self) -> None:  # noqa: B027 - optional for providers
        """Release connections."""


class ProviderUnavailable(MailgateError):
    """A configured provider cannot be used in this process (its secret is not in the environment).

    A refusal, not a crash: every front door shows the reason (which names the missing setting).
    """

    http_status = 503


class NoInbox(ProviderUnavailable):
    """A read of a send-only mailbox."""

    http_status = 409


# Mailbox secrets come from each process's environment, so a command can miss one the server has.
SECRET_MISSING: dict[Door, str] = {
    "mcp": "this mailbox cannot be used until its operator fixes its settings; other mailboxes still work",
    "cli": "set it in the environment this command runs in (mailbox secrets are read from the environment)",
    "api": "the operator must fix this mailbox's settings where mailgate runs",
}


class UnavailableProvider(EmailProvider):
    """Stands in for a provider that could not be built; every use raises the reason."""

    name = "unavailable"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _refusal(self) -> ProviderUnavailable:
        return ProviderUnavailable(self.reason, next_steps=SECRET_MISSING)

    async def send(self, request: DeliveryRequest) -> DeliveryReceipt:
        raise TemporaryDeliveryError(self.reason)

    async def list_emails(self, mailbox: str, query: EmailQuery) -> EmailPage:
        raise self._refusal()

    async def fetch_email(self, mailbox: str, email_id: str, *, include_held: bool = False) -> StoredEmail:
        raise self._refusal()

    async def change_email(self, mailbox: str, email_id: str, change: EmailChange, actor: str) -> EmailSummary:
        raise self._refusal()

    async def changes(self, mailbox: str, cursor: str | None, limit: int = 100) -> Changes:
        raise self._refusal()

    async def create_mailbox(self, address: str) -> None:
        raise self._refusal()


class ProviderSet:
    """Which provider serves which mailbox: configured ones by address, the rest by default."""

    def __init__(self, default: EmailProvider, by_address: dict[str, EmailProvider] | None = None) -> None:
        self.default = default
        self._by_address = {k.lower(): v for k, v in (by_address or {}).items()}

    def for_mailbox(self, address: str) -> EmailProvider:
        return self._by_address.get(address.lower(), self.default)

    def all(self) -> list[EmailProvider]:
        return list({id(p): p for p in [self.default, *self._by_address.values()]}.values())

    async def start(self) -> None:
        for provider in self.all():
            await provider.start()

    async def aclose(self) -> None:
        for provider in self.all():
            await provider.aclose()
