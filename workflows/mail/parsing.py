"""Reading inbound mail: any bytes in, a `ParsedEmail` out, never an exception.

Inbound mail is written by strangers and is often broken: wrong or unknown charsets, raw
8-bit headers, malformed encoded words, address lists a parser can read two ways. Every
step here falls back instead of failing, and every string that comes out is valid Unicode
without control characters (bodies keep their line breaks and tabs).

It is also written to be slow: the standard library's header parser is quadratic or worse
on some inputs (20,000 encoded words, ``"a\\"`` repeated, thousands of MIME parameters), and
its MIME parser recurses once per nesting level. So the input is bounded before the stdlib
sees it (`BOUNDED`: header values, addresses per header, References, header fields, MIME
parts and nesting), and everything after that here is linear. Callers on an event loop run
`parse_email` in a worker thread (`parse_email_async`).
"""

from __future__ import annotations

import asyncio
import codecs
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime
from functools import lru_cache
from itertools import islice
from typing import Any

from workflows.mail.htmltext import html_to_text
from workflows.mail.threads import message_ids
from workflows.models import EmailAddress

MAX_DEPTH = 20
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
MAX_PARTS = 500  # leaf parts walked
SNIPPET_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\x85]")
_HEADER_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
_SPACES = re.compile(r"\s+")
_PARSING = threading.Lock()
_SURROGATE = re.compile("[\udc80-\udcff]")  # raw 8-bit bytes the parser kept as surrogate escapes
_QUOTE_INTRO = re.compile(r"^(On .{0,200} wrote:|-+\s*Original Message\s*-+)$", re.IGNORECASE)
# Labels that mail software uses for charsets Python knows by another (usually wider) name.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-8-i": "iso-8859-8",
    "x-mac-roman": "mac-roman",
    "unicode-1-1-utf-7": "utf-7",
}

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


@dataclass(frozen=True)
class AttachmentPart:
    index: int
    filename: str
    content_type: str
    content: bytes
    inline: bool = False
    content_id: str = ""

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str = ""
    subject: str = ""
    sender: EmailAddress | None = None
    reply_to: tuple[EmailAddress, ...] = ()
    to: tuple[EmailAddress, ...] = ()
    cc: tuple[EmailAddress, ...] = ()
    date: datetime | None = None
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    text: str = ""
    from_html: bool = False
    attachments: tuple[AttachmentPart, ...] = ()
    auto_submitted: bool = False
    defects: tuple[str, ...] = field(default=())

    @property
    def parent_ids(self) -> tuple[str, ...]:
        """References, then In-Reply-To if it is not their last entry: the chain JWZ links."""
        if self.in_reply_to and (not self.references or self.references[-1] != self.in_reply_to):
            return (*self.references, self.in_reply_to)
        return self.references

    @property
    def snippet(self) -> str:
        return make_snippet(self.text)


def clean_text(value: str) -> str:
    """Valid Unicode (raw 8-bit bytes recovered as UTF-8, else Windows-1252) without control characters."""
    if _SURROGATE.search(value):
        raw = value.encode("utf-8", "surrogateescape")
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            value = raw.decode("cp1252", "replace")
    value = value.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def clean_header(value: str) -> str:
    """One line of header text: control characters and folding become single spaces."""
    return _SPACES.sub(" ", _HEADER_CONTROL.sub(" ", clean_text(value))).strip()


def make_snippet(text: str) -> str:
    lines = [line for line in new_text(text).splitlines() if line.strip()]
    snippet = _SPACES.sub(" ", " ".join(lines)).strip()
    return snippet if len(snippet) <= SNIPPET_CHARS else snippet[: SNIPPET_CHARS - 1].rstrip() + "…"


def new_text(text: str) -> str:
    """The text without the quoted earlier messages a reply carries (``>`` lines and their intro)."""
    lines = text.splitlines()
    kept = [line for line in lines if not line.lstrip().startswith(">")]
    while kept and (not kept[-1].strip() or _QUOTE_INTRO.match(kept[-1].strip())):
        kept.pop()
    return "\n".join(kept).strip()


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Declared charset, then UTF-8, then the declared one with replacement, then Windows-1252."""
    label = (charset or "").strip().strip("\"'").lower()
    declared: str | None = None
    if label:
        try:
            declared = codecs.lookup(_CHARSET_ALIASES.get(label, label)).name
        except (LookupError, ValueError):  # unknown, or not even a name (a NUL in it)
            declared = None
    for name in (declared, "utf-8"):
        if name:
            try:
                return data.decode(name)
            except (UnicodeDecodeError, LookupError, ValueError):
                continue
    return data.decode(declared or "cp1252", "replace")


def _raw_header(msg: Message, name: str) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _has_raw_bytes(value: str | None) -> bool:
    return value is not None and _SURROGATE.search(value) is not None


def header_text(msg: Message, name: str) -> str:
    """A header's decoded text, however broken its encoded words or bytes."""
    raw = _raw_header(msg, name)
    if _has_raw_bytes(raw):
        # Raw 8-bit text (RFC 6532, or a careless client): recover it before the parser replaces it.
        return clean_header(header_text_of(clean_text(raw or "")))
    try:
        value = msg.get(name)
        if value is None:
            return ""
        return clean_header(str(value))
    except Exception:
        raw = _raw_header(msg, name) or ""
    try:
        return clean_header(str(make_header(decode_header(raw))))
    except Exception:
        return clean_header(raw)


def _address(name: str, address: str) -> EmailAddress | None:
    address = clean_header(address).strip("<>")
    name = clean_header(name).strip('"').strip()
    if not address and not name:
        return None
    return EmailAddress(address=address, name=name[:200])


def header_addresses(msg: Message, name: str) -> tuple[EmailAddress, ...]:
    found: dict[tuple[str, str], EmailAddress] = {}
    raw_value = _raw_header(msg, name)
    try:
        if _has_raw_bytes(raw_value):
            raise ValueError("raw 8-bit header")
        header = msg.get(name)
        groups = [(a.display_name, a.addr_spec) for a in getattr(header, "addresses", ())] if header else []
    except Exception:
        raw = clean_text(raw_value or "")
        try:
            groups = [(header_text_of(n), a) for n, a in getaddresses([raw])]
        except Exception:
            groups = []
    for display, addr in groups:
        parsed = _address(display, addr)
        if parsed is not None:
            found.setdefault((parsed.name, parsed.address), parsed)
            if len(found) >= MAX_ADDRESSES:
                break
    return tuple(found.values())


def header_text_of(raw: str) -> str:
    try:
        return str(make_header(decode_header(raw)))
    except Exception:
        return raw


def _date(msg: Message) -> datetime | None:
    raw = _raw_header(msg, "Date")
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(clean_header(raw))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _flowed(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: soft line breaks (a trailing space) join their lines."""
    out: list[str] = []
    carry: list[str] = []  # a list: joining a long paragraph by += would be quadratic
    for line in text.split("\n"):
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if line.endswith(" ") and line != "-- ":
            carry.append(line[:-1] if delsp else line)
            continue
        out.append("".join(carry) + line)
        carry = []
    if carry:
        out.append("".join(carry))
    return "\n".join(out)


class _Walker:
    def __init__(self) -> None:
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[AttachmentPart] = []
        self.defects: list[str] = []
        self.parts = 0

    def walk(self, part: Message, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            self.defects.append("multipart nesting deeper than 20 levels; the rest is ignored")
            return
        self.parts += 1
        if self.parts > MAX_PARTS:
            if self.parts == MAX_PARTS + 1:
                self.defects.append(f"more than {MAX_PARTS} MIME parts; the rest is ignored")
            return
        ctype = _content_type(part)
        if ctype == "message/rfc822":  # a forwarded email is an attachment, not more of this text
            self._attach(part, ctype, _filename(part), _disposition(part))
            return
        if part.is_multipart():
            children = [c for c in part.get_payload() if isinstance(c, Message)]
            if ctype == "multipart/alternative" and children:
                self._alternative(children, depth)
            else:
                for child in children:
                    self.walk(child, depth + 1)
            return
        filename = _filename(part)
        disposition = _disposition(part)
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text = _text(part)
            if ctype == "text/html":
                self.html.append(text)
            else:
                self.plain.append(text)
            return
        self._attach(part, ctype, filename, disposition)

    def _alternative(self, children: list[Message], depth: int) -> None:
        types = [_content_type(c) for c in children]
        plain = [c for c, t in zip(children, types, strict=True) if t == "text/plain"]
        if plain and any(_text(c).strip() for c in plain):
            self.walk(plain[0], depth + 1)
            return
        html = [c for c, t in zip(children, types, strict=True) if t == "text/html"]
        self.walk(html[-1] if html else children[-1], depth + 1)

    def _attach(self, part: Message, ctype: str, filename: str, disposition: str) -> None:
        index = len(self.attachments) + 1
        if ctype == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            content = inner.as_bytes() if isinstance(inner, Message) else _payload(part)
        else:
            content = _payload(part)
        if not filename:
            extension = {"message/rfc822": ".eml", "text/calendar": ".ics"}.get(ctype, "")
            filename = f"part-{index}{extension}"
        self.attachments.append(
            AttachmentPart(
                index=index,
                filename=filename,
                content_type=ctype,
                content=content,
                inline=disposition == "inline",
                content_id=clean_header(str(part.get("Content-ID", "") or ""))[:200],
            )
        )


def _content_type(part: Message) -> str:
    try:
        ctype = part.get_content_type()
    except Exception:
        return "application/octet-stream"
    return ctype if re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", ctype) else "application/octet-stream"


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _filename(part: Message) -> str:
    """The attachment's name, RFC 2231 or RFC 2047 encoded; only its last path component."""
    try:
        name = part.get_filename() or part.get_param("name", header="content-type") or ""
    except Exception:
        name = ""
    if isinstance(name, tuple):  # an undecoded RFC 2231 triple
        name = decode_bytes(name[2].encode("latin-1", "replace"), name[0])
    name = header_text_of(str(name)) if "=?" in str(name) else str(name)
    name = clean_header(name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "" if name in ("", ".", "..") else name[:255]


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _text(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    text = clean_text(decode_bytes(_payload(part), charset))
    try:
        if (part.get_param("format") or "").lower() == "flowed":  # type: ignore[union-attr]
            text = _flowed(text, (part.get_param("delsp") or "").lower() == "yes")  # type: ignore[union-attr]
    except (AttributeError, TypeError):
        pass
    return text


def parse_email(raw: bytes) -> ParsedEmail:
    """Everything mailgate reads from a message. Never raises: broken parts become defects."""
    try:
        # One parse at a time: parsing holds the GIL, so parallel parses gain nothing and
        # would take turns with the event loop's thread as several.
        with _PARSING:
            return _parse(raw)
    except Exception as exc:
        text = clean_text(raw.decode("utf-8", "replace"))
        return ParsedEmail(text=text, defects=(f"parser error: {type(exc).__name__}: {exc}",))


async def parse_email_async(raw: bytes) -> ParsedEmail:
    """`parse_email` in a worker thread: for callers on an event loop that serves requests."""
    return await asyncio.to_thread(parse_email, raw)


def _parse(raw: bytes) -> ParsedEmail:
    msg, bounded = read_message(raw)
    walker = _Walker()
    walker.walk(msg)
    from_html = not any(p.strip() for p in walker.plain) and bool(walker.html)
    if from_html:
        text = "\n\n".join(html_to_text(h) for h in walker.html)
    else:
        text = "\n\n".join(p.strip("\n") for p in walker.plain if p.strip())
    senders = header_addresses(msg, "From")
    ids = message_ids(_raw_header(msg, "Message-ID"), limit=1)
    in_reply_to = message_ids(_raw_header(msg, "In-Reply-To"))
    auto = header_text(msg, "Auto-Submitted").lower()
    defects = bounded + [type(d).__name__ for d in getattr(msg, "defects", [])] + walker.defects
    return ParsedEmail(
        message_id=ids[0] if ids else "",
        subject=header_text(msg, "Subject"),
        sender=senders[0] if senders else None,
        reply_to=header_addresses(msg, "Reply-To"),
        to=header_addresses(msg, "To"),
        cc=header_addresses(msg, "Cc"),
        date=_date(msg),
        in_reply_to=in_reply_to[-1] if in_reply_to else "",
        references=tuple(message_ids(_raw_header(msg, "References"))),
        text=text.strip(),
        from_html=from_html,
        attachments=tuple(walker.attachments),
        auto_submitted=bool(auto) and auto != "no",
        defects=tuple(defects),
    )
