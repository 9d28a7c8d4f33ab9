"""Checks of what an agent adds to an outgoing email: attachments, a send time, reply headers.

Attachments travel inside the send's workflow input, and Temporal refuses any payload over
2 MB. So one email carries at most 1 MiB of attachments (about 1.4 MB as base64), and the
whole request is measured before it is started, with an error that says what to cut.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from server.errors import InvalidInput
from workflows.mail.addresses import AddressError, check_header_text
from workflows.mail.threads import message_ids
from workflows.models import Attachment

MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 1024 * 1024  # all attachments of one email together, decoded
MAX_PAYLOAD_BYTES = 1_800_000  # the send request as Temporal stores it; its hard limit is 2 MiB
MAX_SCHEDULE_AHEAD = timedelta(days=365)
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


class AttachmentInput(BaseModel):
    """An attachment as an agent sends it."""

    filename: str = Field(min_length=1, max_length=255, description="File name shown to the recipient.")
    content_type: str = Field(default="application/octet-stream", description="MIME type, e.g. application/pdf.")
    content_base64: str = Field(description="The file's bytes, base64-encoded.")


def parse_attachments(items: Sequence[AttachmentInput] | None) -> tuple[Attachment, ...]:
    if not items:
        return ()
    if len(items) > MAX_ATTACHMENTS:
        raise InvalidInput(f"attachments: at most {MAX_ATTACHMENTS} per email")
    parsed: list[Attachment] = []
    total = 0
    for n, item in enumerate(items, start=1):
        where = f"attachments[{n}]"
        name = item.filename.strip()
        try:
            check_header_text(name, f"{where}.filename", 255)
        except AddressError as exc:
            raise InvalidInput(str(exc)) from exc
        if "/" in name or "\\" in name or name in (".", ".."):
            raise InvalidInput(f"{where}.filename: a plain file name, without / or \\")
        ctype = item.content_type.strip().lower()
        if not _CONTENT_TYPE.fullmatch(ctype) or ctype.startswith(("multipart/", "message/")):
            raise InvalidInput(f"{where}.content_type: a MIME type such as application/pdf or text/csv")
        try:
            content = base64.b64decode("".join(item.content_base64.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(f"{where}.content_base64: not valid base64 ({exc})") from exc
        if not content:
            raise InvalidInput(f"{where}: the file is empty")
        total += len(content)
        if total > MAX_ATTACHMENT_BYTES:
            raise InvalidInput(
                f"attachments: {total} bytes together, over the limit of {MAX_ATTACHMENT_BYTES} bytes (1 MiB) "
                "per email; send large files as links"
            )
        encoded = base64.b64encode(content).decode("ascii")
        parsed.append(Attachment(filename=name, content_type=ctype, content_b64=encoded, size=len(content)))
    return tuple(parsed)


def parse_send_at(value: str | datetime | None, now: datetime | None = None) -> datetime | None:
    """An ISO 8601 time with a UTC offset, in the future and at most a year ahead; returned in UTC."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidInput(f"send_at: {value!r} is not an ISO 8601 time such as 2026-12-01T09:00:00+01:00") from exc
    else:
        at = value
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput("send_at: include a UTC offset (like +01:00, or Z for UTC) so the time is unambiguous")
    now = now or datetime.now(UTC)
    at = at.astimezone(UTC)
    if at <= now:
        raise InvalidInput(
            f"send_at: {at.isoformat(timespec='seconds')} is in the past (it is now "
            f"{now.isoformat(timespec='seconds')}); leave send_at out to send now"
        )
    if at - now > MAX_SCHEDULE_AHEAD:
        raise InvalidInput("send_at: at most 365 days ahead")
    return at


def check_reply_headers(in_reply_to: str | None, references: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """Message ids headed for In-Reply-To and References: each exactly one well-formed ``<id>``."""
    for ident in [*(references or ()), *([in_reply_to] if in_reply_to else [])]:
        if message_ids(ident) != [ident]:
            raise InvalidInput(f"{ident!r} is not a message id (<id@domain>)")
    if len(references) > 100:
        raise InvalidInput("references: at most 100 message ids")
    return in_reply_to or None, tuple(references)
