"""Bounding a message before the standard library parses it.

The stdlib's header parser is quadratic or worse on some inputs (20,000 encoded words, ``"a\\"``
repeated, thousands of MIME parameters) and its MIME parser recurses once per nesting level, so
header values, addresses per header, References, header fields and MIME parts are cut to the
limits below first (`BOUNDED`, `read_message`); what was cut is reported as a defect.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from functools import lru_cache
from itertools import islice
from typing import Any

from workflows.mail.threads import message_ids

MAX_ADDRESSES = 200  # per address header
MAX_ADDRESS_CHARS = 500  # one address of a long list; longer ones are dropped
MAX_HEADER_CHARS = 4_000  # any other header value the stdlib may parse
MAX_MIME_HEADER_CHARS = 1_000  # Content-* values
MAX_PARAMS = 30  # parameters of a Content-* value
MAX_FIELDS = 300  # header fields of the message itself; beyond, only the ones mailgate reads are kept
MAX_HEAD_BYTES = 256 * 1024  # the message's header block; beyond, the same
MAX_FIELD_BYTES = 64 * 1024
MAX_CONTAINERS = 50  # multipart and message/* parts; beyond, the body is not split into parts
MAX_DELIMITERS = 1_000  # lines starting with "--" (MIME part boundaries)
MAX_LINES = 500_000

_ADDRESS_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "sender", "resent-from", "resent-to", "resent-cc", "resent-bcc"}
)
_ID_HEADERS = frozenset({"references", "in-reply-to", "message-id"})
# One item of an address list: quoted strings, comments and <...> may hold commas.
_ADDRESS_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*+"?|\((?:[^()\\]|\\.)*+\)?|<[^<>]*+>?|[^",(<]++|,|.', re.DOTALL)
# The top-level fields mailgate reads; when a message has too many fields, only these are kept.
_WANTED_FIELD = re.compile(
    rb"^(?:from|to|cc|reply-to|subject|date|message-id|in-reply-to|references|auto-submitted|mime-version"
    rb"|content-[a-z-]+)[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*(?:\n|$)",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _address_items(value: str) -> list[str]:
    """The first `MAX_ADDRESSES` items of an address list, split at top-level commas in one pass."""
    items: list[str] = []
    current: list[str] = []
    size = 0
    for match in _ADDRESS_TOKEN.finditer(value):
        piece = match.group()
        if piece == ",":
            if current and size <= MAX_ADDRESS_CHARS:
                items.append("".join(current))
                if len(items) >= MAX_ADDRESSES:
                    return items
            current, size = [], 0
        elif size <= MAX_ADDRESS_CHARS:
            current.append(piece)
            size += len(piece)
    if current and size <= MAX_ADDRESS_CHARS and len(items) < MAX_ADDRESSES:
        items.append("".join(current))
    return items


def bound_header(name: str, value: str) -> str:
    """A header value the stdlib parses in bounded time (values of ordinary mail pass unchanged)."""
    key = name.lower()
    if key in _ADDRESS_HEADERS:
        if len(value) <= MAX_HEADER_CHARS and value.count(",") < MAX_ADDRESSES:
            return value
        return ",".join(_address_items(value))
    if key.startswith("content-"):
        # MIME parameters cost the stdlib more than linear time each (RFC 2231 continuations).
        value = value[:MAX_MIME_HEADER_CHARS]
        params = value.split(";", MAX_PARAMS + 1)
        return ";".join(params[: MAX_PARAMS + 1]) if len(params) > MAX_PARAMS + 1 else value
    if len(value) <= MAX_HEADER_CHARS:
        return value
    if key in _ID_HEADERS:
        ids = message_ids(value[-64_000:])  # the newest ids are at the end; message_ids keeps the last 100
        return " ".join(ids) if ids else value[:MAX_HEADER_CHARS]
    return value[:MAX_HEADER_CHARS]


class _BoundedPolicy(EmailPolicy):
    """`policy.default` that bounds each header value as the parser reads it (every MIME part's too),
    and parses each distinct header once (the stdlib parses again on every ``get``)."""

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        return name, bound_header(name, value)

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value
        return _parsed_header(name, value)


@lru_cache(maxsize=256)
def _parsed_header(name: str, value: str) -> Any:
    return EmailPolicy.header_fetch_parse(BOUNDED, name, value)


# refold_source="none": re-serialising a forwarded message must not parse every header again.
BOUNDED = _BoundedPolicy(refold_source="none")


def _cut(field: bytes) -> bytes:
    """One header field of at most `MAX_FIELD_BYTES`, cut at a fold: References keep their newest ids."""
    if len(field) <= MAX_FIELD_BYTES:
        return field
    name = field.split(b":", 1)[0]
    if name.strip().lower() in (b"references", b"in-reply-to"):
        tail = field[-MAX_FIELD_BYTES:]
        fold = tail.find(b"\n")
        return name + b":" + (tail[fold:] if fold >= 0 else b"\r\n")
    head = field[:MAX_FIELD_BYTES]
    fold = head.rfind(b"\n")
    return head[:fold] + b"\r\n" if fold > 0 else head + b"\r\n"


def _bound_fields(raw: bytes) -> tuple[bytes, list[str]]:
    """The message with at most `MAX_FIELDS` fields (those mailgate reads) of bounded size, when it needs it."""
    end = _HEADER_END.search(raw)
    head, body = (raw[: end.start()], raw[end.start() :]) if end else (raw, b"")
    fields = head.count(b"\n") + 1 - head.count(b"\n ") - head.count(b"\n\t")
    if fields <= MAX_FIELDS and len(head) <= MAX_HEAD_BYTES:
        return raw, []
    kept = [match.group() for match in islice(_WANTED_FIELD.finditer(head), MAX_FIELDS)]
    kept = [_cut(line if line.endswith(b"\n") else line + b"\r\n") for line in kept]
    defects = [f"{fields - len(kept)} header fields ignored"] if fields > len(kept) else []
    if len(head) > MAX_HEAD_BYTES:
        defects.append(f"header longer than {MAX_HEAD_BYTES} bytes; long fields were cut")
    return b"".join(kept).rstrip(b"\r\n") + body, defects


def read_message(raw: bytes) -> tuple[Message, list[str]]:
    """The stdlib's message object of `raw`, bounded; and what was left out to bound it."""
    raw, defects = _bound_fields(raw)
    lowered = raw.lower()
    containers = sum(lowered.count(word) for word in (b"boundary", b"message/", b"message /"))
    delimiters = raw.count(b"\n--")
    lines = raw.count(b"\n")
    headers_only = containers > MAX_CONTAINERS or delimiters > MAX_DELIMITERS or lines > MAX_LINES
    if not headers_only:
        return BytesParser(policy=BOUNDED).parsebytes(raw), defects
    defects.append("too many MIME parts or lines; the body was not split into parts")
    # The parser would still read the body line by line; it is the payload as it stands.
    end = _HEADER_END.search(raw)
    head, body = (raw[: end.start()], raw[end.end() :]) if end else (raw, b"")
    msg = BytesParser(policy=BOUNDED).parsebytes(head + b"\r\n\r\n", headersonly=True)
    msg.set_payload(body.decode("ascii", "surrogateescape"))
    return msg, defects
