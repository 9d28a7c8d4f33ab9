"""Stable identifiers: the same send always gets the same workflow id and Message-ID."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from workflows.models import EmailDraft

SEND_PREFIX = "send-"
MAILBOX_PREFIX = "mailbox-"


def _digest(*parts: str, length: int = 20) -> str:
    raw = hashlib.sha256("\x00".join(parts).encode()).digest()
    return base64.b32encode(raw).decode("ascii").lower()[:length]


def mailbox_key(address: str) -> str:
    """The mailbox's id in search attributes: a hash, so no address lands in visibility."""
    return "mbx" + _digest(address.lower(), length=16)


def mailbox_workflow_id(address: str) -> str:
    return MAILBOX_PREFIX + mailbox_key(address)


# Fields added to EmailDraft later count only when set, so earlier drafts keep their hashes (and
# an agent retrying across an upgrade still finds its send).
_LATER_FIELDS = ("from_alias", "signature", "body_format", "quote")


def content_hash(draft: EmailDraft, extra: dict[str, Any] | None = None) -> str:
    dumped = draft.model_dump(mode="json")
    for name in _LATER_FIELDS:
        if dumped[name] == EmailDraft.model_fields[name].default:
            del dumped[name]
    data = {"draft": dumped, **(extra or {})}
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def send_id(mailbox: str, idempotency_key: str) -> str:
    return SEND_PREFIX + _digest(mailbox.lower(), idempotency_key)


def message_id(send_id: str, mailbox: str) -> str:
    """Fixed once per send: a retry of the delivery carries the same Message-ID."""
    domain = mailbox.rpartition("@")[2].lower()
    return f"<{send_id}@{domain}>"


WATCHER_PREFIX = "watch-"
REPLY_WAIT_PREFIX = "reply-wait-"
INTAKE_PREFIX = "intake-"


def watcher_workflow_id(address: str) -> str:
    return WATCHER_PREFIX + mailbox_key(address)


def reply_wait_id(send_id: str) -> str:
    """One reply wait per send: a second call attaches to the wait already running."""
    return REPLY_WAIT_PREFIX + send_id


def intake_workflow_id(address: str, message_id: str) -> str:
    """The same inbound email (mailbox, Message-ID) always maps to the same intake workflow."""
    return f"{INTAKE_PREFIX}{mailbox_key(address)}-{_digest(message_id, length=26)}"
