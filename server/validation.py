"""Input validation for every front door: what a caller gives, made a clean value or refused.

Each check raises InvalidInput naming the field, so MCP tools, the HTTP API, the dashboard and
the CLI refuse bad input alike, before anything changes. Headers a stranger wrote are cleaned
here too, before a reply puts them into mailgate's own headers.

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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from server.errors import InvalidInput
from workflows.mail.addresses import (
    MAX_BODY_BYTES,
    MAX_RECIPIENTS,
    MAX_SUBJECT_CHARS,
    AddressError,
    check_header_text,
    parse_addr_spec,
    parse_addresses,
)
from workflows.mail.parsing import ParsedEmail
from workflows.mail.threads import message_ids, reply_subject
from workflows.mail.visibility import strip_invisible
from workflows.models import Attachment, Edits, EmailAddress, EmailDraft

MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 1024 * 1024  # all attachments of one email together, decoded
MAX_PAYLOAD_BYTES = 1_800_000  # the send request as Temporal stores it; its hard limit is 2 MiB
MAX_SCHEDULE_AHEAD = timedelta(days=365)
BODY_FORMATS = ("text", "markdown", "html")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_KEY_RE = re.compile(r"[\x21-\x7e]{1,200}")
_SEND_ID_RE = re.compile(r"send-[a-z2-7]{20}")
_ENCODED_WORD = re.compile(r"=\?")
NAME_PUNCTUATION = re.compile(r'[<>@",;:\\\[\]()]')  # a display name with one of these needs quotes


# --- names and ids -------------------------------------------------------------------------------


def parse_mailbox(address: str) -> str:
    try:
        return parse_addr_spec(address.strip())
    except AddressError as exc:
        raise InvalidInput(f"mailbox: {exc}") from exc


def parse_send_id(send_id: str) -> str:
    send_id = send_id.strip()
    if not _SEND_ID_RE.fullmatch(send_id):
        raise InvalidInput(f"{send_id!r} is not a send id (they look like send-abcdefghij2345abcdef)")
    return send_id


def check_person(name: str, field: str = "approver") -> str:
    name = name.strip()
    if not name:
        raise InvalidInput(f"{field}: a name is required")
    return check_text(name, field, 200)


def check_text(value: str, field: str, limit: int) -> str:
    """One line of text for a header or the audit log: no control or invisible characters."""
    try:
        return check_header_text(value, field, limit)
    except AddressError as exc:
        raise InvalidInput(str(exc)) from exc


def check_limit(limit: int, most: int = 100) -> None:
    if not 1 <= limit <= most:
        raise InvalidInput(f"limit: from 1 to {most}")


def parse_since(value: str | None) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInput(f"since: {value!r} is not an ISO 8601 date or time such as 2026-11-30T09:00:00Z") from exc
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


# --- what an agent sends, and a human's edits ------------------------------------------------------


def check_send_options(body_format: str, idempotency_key: str | None, approval_timeout_hours: float | None) -> None:
    if body_format not in BODY_FORMATS:
        raise InvalidInput(f"body_format: one of {', '.join(BODY_FORMATS)}, not {body_format!r}")
    if idempotency_key is not None and not _KEY_RE.fullmatch(idempotency_key):
        raise InvalidInput("idempotency_key: 1 to 200 printable ASCII characters without spaces")
    if approval_timeout_hours is not None and not 0 < approval_timeout_hours <= 24 * 365:
        raise InvalidInput("approval_timeout_hours: a positive number of hours, at most 8760")


def parse_draft(to: list[str], cc: list[str], bcc: list[str], subject: str, body: str, **extra: object) -> EmailDraft:
    try:
        draft = EmailDraft(
            to=parse_addresses(to, "to"),
            cc=parse_addresses(cc, "cc"),
            bcc=parse_addresses(bcc, "bcc"),
            subject=check_header_text(subject, "subject", MAX_SUBJECT_CHARS),
            body=body,
            **extra,
        )
    except AddressError as exc:
        raise InvalidInput(str(exc)) from exc
    if not draft.to:
        raise InvalidInput("to: at least one recipient is required")
    if len(draft.recipients()) > MAX_RECIPIENTS:
        raise InvalidInput(f"at most {MAX_RECIPIENTS} recipients in to, cc and bcc together")
    if len(body.encode()) > MAX_BODY_BYTES:
        raise InvalidInput(f"body is {len(body.encode())} bytes; the limit is {MAX_BODY_BYTES}")
    if "\x00" in body:
        raise InvalidInput("body contains a NUL character")
    return draft


def parse_recipients(raw: list[str] | None, field: str) -> tuple[EmailAddress, ...]:
    """Recipients of a draft: none yet is fine."""
    if not raw:
        return ()
    if len(raw) > MAX_RECIPIENTS:
        raise InvalidInput(f"{field}: at most {MAX_RECIPIENTS} addresses")
    try:
        return parse_addresses(raw, field)
    except AddressError as exc:
        raise InvalidInput(str(exc)) from exc


def parse_edits(
    subject: str | None = None,
    body: str | None = None,
    to: list[str] | None = None,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
) -> Edits | None:
    """A human's edits, validated as strictly as the agent's original."""
    try:
        edits = Edits(
            subject=check_header_text(subject, "subject", MAX_SUBJECT_CHARS) if subject is not None else None,
            body=body,
            to=parse_addresses(to, "to") if to is not None else None,
            cc=parse_addresses(cc, "cc") if cc is not None else None,
            bcc=parse_addresses(bcc, "bcc") if bcc is not None else None,
        )
    except AddressError as exc:
        raise InvalidInput(str(exc)) from exc
    if edits.to is not None and not edits.to:
        raise InvalidInput("to: an edit may not remove every recipient")
    if body is not None and len(body.encode()) > MAX_BODY_BYTES:
        raise InvalidInput(f"body is {len(body.encode())} bytes; the limit is {MAX_BODY_BYTES}")
    return edits if edits.changes() else None


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
        name = check_text(item.filename.strip(), f"{where}.filename", 255)
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


# --- a mailbox's policies --------------------------------------------------------------------------


class PolicyChanges(BaseModel):
    """A human's edit of a mailbox's policies (the mode has its own path)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=100)
    approvers: list[str] | None = Field(default=None, max_length=50)
    reviewers: list[str] | None = Field(default=None, max_length=50)
    allow: list[str] | None = Field(default=None, max_length=500)
    deny: list[str] | None = Field(default=None, max_length=500)
    rate_per_hour: int | None = Field(default=None, ge=0)
    rate_per_day: int | None = Field(default=None, ge=0)
    approval_window_hours: float | None = Field(default=None, gt=0, le=24 * 365)

    def validated(self) -> dict[str, Any]:
        """The changes, checked and normalised; 0 for a rate limit removes it."""
        changes: dict[str, Any] = {}
        try:
            if self.display_name is not None:
                changes["display_name"] = check_header_text(self.display_name, "display_name", 100)
            for field in ("approvers", "reviewers"):
                people = getattr(self, field)
                if people is not None:
                    changes[field] = tuple(check_header_text(p.strip(), field, 200) for p in people if p.strip())
            for field in ("allow", "deny"):
                entries = getattr(self, field)
                if entries is not None:
                    changes[field] = tuple(list_entry(e) for e in entries)
        except AddressError as exc:
            raise InvalidInput(str(exc)) from exc
        for field in ("rate_per_hour", "rate_per_day"):
            limit = getattr(self, field)
            if limit is not None:
                changes[field] = limit or None
        if self.approval_window_hours is not None:
            changes["approval_window_hours"] = self.approval_window_hours
        return changes


def list_entry(entry: str) -> str:
    """An allow/deny entry: an address, a domain, or *.domain for its subdomains."""
    text = entry.strip().lower()
    if text.startswith("*."):
        parse_addr_spec(f"x@{text[2:]}")
    elif "@" in text.lstrip("@"):
        text = parse_addr_spec(text)
    else:
        text = parse_addr_spec(f"x@{text.lstrip('@')}").partition("@")[2]
    return text


# --- replies: what a stranger wrote, made safe for mailgate's own headers -------------------------


def reply_address(address: EmailAddress) -> EmailAddress | None:
    """An address read from an inbound header, made safe to write into our own headers, or None."""
    try:
        addr = parse_addr_spec(address.address.strip())
    except AddressError:
        return None
    # The stranger's own name goes into our header: without characters that make it read as
    # something else ("Bank Support<U+202E> <moc.knab@...>" shows a bank's address).
    name = strip_invisible(address.name)
    name = " ".join(NAME_PUNCTUATION.sub(" ", _ENCODED_WORD.sub("= ?", name)).split())[:100]
    return EmailAddress(address=addr, name=name)


def safe_subject(subject: str) -> str:
    """An inbound subject for our reply: one line (already), no encoded-word lookalikes, nothing
    invisible or direction-changing (the agent did not write it, so it is cleaned, not refused), capped."""
    return reply_subject(_ENCODED_WORD.sub("= ?", strip_invisible(subject)))[:MAX_SUBJECT_CHARS]


def reply_recipients(
    parsed: ParsedEmail, own: str, *, from_us: bool, reply_all: bool
) -> tuple[list[EmailAddress], list[EmailAddress]]:
    """To: Reply-To, else From (our own sent mail: its To again). Reply-all adds To and Cc as Cc.

    The mailbox's own address is never among them, and each address is re-validated: these
    come from headers a stranger wrote.
    """
    first = list(parsed.to) if from_us else list(parsed.reply_to or ((parsed.sender,) if parsed.sender else ()))
    seen = {own.lower()}
    to: list[EmailAddress] = []
    cc: list[EmailAddress] = []
    for bucket, candidates in ((to, first), (cc, [*parsed.to, *parsed.cc] if reply_all else [])):
        for candidate in candidates:
            address = reply_address(candidate)
            if address is not None and address.address.lower() not in seen:
                seen.add(address.address.lower())
                bucket.append(address)
    return to, cc
