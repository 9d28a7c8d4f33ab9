"""The MIME parts of a message: its text (plain preferred over HTML in an alternative, flowed
lines joined) and its attachments (forwarded emails included), walked within `MAX_PARTS` parts
and `MAX_DEPTH` levels."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from workflows.mail.decoding import clean_header, clean_text, decode_bytes, header_text_of

MAX_DEPTH = 20
MAX_PARTS = 500  # leaf parts walked


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


class PartWalker:
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
