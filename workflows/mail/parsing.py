"""Reading inbound mail: any bytes in, a `ParsedEmail` out, never an exception.

Inbound mail is written by strangers and is often broken: wrong or unknown charsets, raw
8-bit headers, malformed encoded words, address lists a parser can read two ways. Every
step here falls back instead of failing, and every string that comes out is valid Unicode
without control characters (bodies keep their line breaks and tabs).

It is also written to be slow: the standard library's header parser is quadratic or worse
on some inputs (20,000 encoded words, ``"a\\"`` repeated, thousands of MIME parameters), and
its MIME parser recurses once per nesting level. So the input is bounded before the stdlib
sees it (``bounds.py``: header values, addresses per header, References, header fields, MIME
parts and nesting), and everything after that is linear. Callers on an event loop run
`parse_email` in a worker thread (`parse_email_async`). Text and headers are decoded in
``decoding.py``, the MIME parts walked in ``parts.py``.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime

from workflows.mail.bounds import read_message
from workflows.mail.decoding import clean_text, header_addresses, header_date, header_text, raw_header
from workflows.mail.htmltext import html_to_text
from workflows.mail.parts import AttachmentPart, PartWalker
from workflows.mail.threads import message_ids
from workflows.models import EmailAddress

SNIPPET_CHARS = 200
_SPACES = re.compile(r"\s+")
_PARSING = threading.Lock()
_QUOTE_INTRO = re.compile(r"^(On .{0,200} wrote:|-+\s*Original Message\s*-+)$", re.IGNORECASE)


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
    walker = PartWalker()
    walker.walk(msg)
    from_html = not any(p.strip() for p in walker.plain) and bool(walker.html)
    if from_html:
        text = "\n\n".join(html_to_text(h) for h in walker.html)
    else:
        text = "\n\n".join(p.strip("\n") for p in walker.plain if p.strip())
    senders = header_addresses(msg, "From")
    ids = message_ids(raw_header(msg, "Message-ID"), limit=1)
    in_reply_to = message_ids(raw_header(msg, "In-Reply-To"))
    auto = header_text(msg, "Auto-Submitted").lower()
    defects = bounded + [type(d).__name__ for d in getattr(msg, "defects", [])] + walker.defects
    return ParsedEmail(
        message_id=ids[0] if ids else "",
        subject=header_text(msg, "Subject"),
        sender=senders[0] if senders else None,
        reply_to=header_addresses(msg, "Reply-To"),
        to=header_addresses(msg, "To"),
        cc=header_addresses(msg, "Cc"),
        date=header_date(msg),
        in_reply_to=in_reply_to[-1] if in_reply_to else "",
        references=tuple(message_ids(raw_header(msg, "References"))),
        text=text.strip(),
        from_html=from_html,
        attachments=tuple(walker.attachments),
        auto_submitted=bool(auto) and auto != "no",
        defects=tuple(defects),
    )
