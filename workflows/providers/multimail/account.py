"""One MultiMail mailbox as mailgate reaches it: its configuration, the API client, and what
every part of the provider shares (ids, MultiMail's errors as delivery errors, its fields)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from workflows.mail.addresses import AddressError, parse_address
from workflows.models import EmailAddress, Frozen
from workflows.providers.base import (
    EmailNotFound,
    EmailProvider,
    InboundHooks,
    NoHooks,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from workflows.providers.multimail.client import MultiMailClient, MultiMailError, RateLimitError
from workflows.providers.multimail.holds import HoldStore
from workflows.trust.marks import NoticeMarks

_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
MULTIMAIL_HOLDS = ("pending_inbound_approval",)  # inbound mail MultiMail holds for its own human
_MM_MESSAGE_ID = re.compile(r"<mm\.([A-Za-z0-9_.:-]{1,128})@multimail\.mailgate\.invalid>")


class MultiMailConfig(Frozen):
    address: str
    mailbox_id: str
    base_url: str = "https://api.multimail.dev"
    decision_poll: timedelta = timedelta(minutes=5)
    timeout: float = 30.0


def checked_id(value: str, what: str = "email id") -> str:
    """MultiMail ids are plain id characters; anything else is no email of theirs (paths are encoded anyway)."""
    value = value.strip()
    if not _ID.fullmatch(value) or value.strip(".") == "":  # "." and ".." are path steps, no ids
        raise EmailNotFound(f"{value!r} is not a MultiMail {what}")
    return value


def message_id_of(email_id: str) -> str:
    return f"<mm.{email_id}@multimail.mailgate.invalid>"


def reply_parent(in_reply_to: str | None) -> str | None:
    """The MultiMail email id a reply answers, when its In-Reply-To is one of ``message_id_of``'s."""
    parent = _MM_MESSAGE_ID.fullmatch(in_reply_to or "")
    return parent.group(1) if parent else None


def classify(exc: Exception, what: str) -> Exception:
    """MultiMail's answers as delivery errors: retry what may pass later, fail what will not."""
    if isinstance(exc, RateLimitError):
        return TemporaryDeliveryError(f"{what}: MultiMail rate limit ({exc}); retry after {exc.retry_after or '?'} s")
    if isinstance(exc, MultiMailError):
        status = exc.status_code or 0
        words = f"MultiMail answered {status}: {exc}"
        if status >= 500 or status in (408, 409, 425):
            return TemporaryDeliveryError(f"{what}: {words}")
        return PermanentDeliveryError(f"{what}: {words}")
    if isinstance(exc, httpx.HTTPError | ValueError):
        return TemporaryDeliveryError(f"{what}: cannot reach MultiMail: {exc or type(exc).__name__}")
    return exc


def parse_people(values: Any) -> tuple[EmailAddress, ...]:
    found = []
    for value in values if isinstance(values, list) else [values] if isinstance(values, str) else []:
        try:
            found.append(parse_address(str(value)))
        except AddressError:
            continue
    return tuple(found)


def when(value: Any) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class MultiMailAccount(EmailProvider):
    """The client and settings every part of MultiMailProvider works with."""

    name = "multimail"

    def __init__(
        self,
        config: MultiMailConfig,
        api_key: str,
        client: MultiMailClient | None = None,
        *,
        hooks: InboundHooks | None = None,
        holds: HoldStore | None = None,
        marks: NoticeMarks | None = None,
    ) -> None:
        self.config = config
        self.client = client or MultiMailClient(api_key, base_url=config.base_url, timeout=config.timeout)
        self.hooks: InboundHooks = hooks or NoHooks()
        self.holds = holds or HoldStore()
        self.marks = marks
        self._pending_list = True

    def __repr__(self) -> str:  # never the key
        return f"MultiMailProvider({self.config.address}, {self.config.mailbox_id}, {self.config.base_url})"

    async def _call(self, what: str, call: Any) -> Any:
        try:
            return await call
        except (MultiMailError, httpx.HTTPError, ValueError) as exc:
            raise classify(exc, what) from exc

    async def _mode(self) -> str:
        boxes = await self._call("list mailboxes", self.client.list_mailboxes())
        for box in boxes:
            if box.id == self.config.mailbox_id:
                return str(box.oversight_mode or "gated_send")
        raise PermanentDeliveryError(f"MultiMail has no mailbox {self.config.mailbox_id} for this API key")
