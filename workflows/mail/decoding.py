"""Text out of broken mail: charsets declared wrong or not at all, raw 8-bit bytes, malformed
encoded words, control characters. Each step falls back instead of failing, and what comes out
is valid Unicode (header text on one line; bodies keep their line breaks and tabs)."""

from __future__ import annotations

import codecs
import re
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from workflows.mail.bounds import MAX_ADDRESSES
from workflows.models import EmailAddress

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\x85]")
_HEADER_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
_SPACES = re.compile(r"\s+")
_SURROGATE = re.compile("[\udc80-\udcff]")  # raw 8-bit bytes the parser kept as surrogate escapes
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


def raw_header(msg: Message, name: str) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _has_raw_bytes(value: str | None) -> bool:
    return value is not None and _SURROGATE.search(value) is not None


def header_text(msg: Message, name: str) -> str:
    """A header's decoded text, however broken its encoded words or bytes."""
    raw = raw_header(msg, name)
    if _has_raw_bytes(raw):
        # Raw 8-bit text (RFC 6532, or a careless client): recover it before the parser replaces it.
        return clean_header(header_text_of(clean_text(raw or "")))
    try:
        value = msg.get(name)
        if value is None:
            return ""
        return clean_header(str(value))
    except Exception:
        raw = raw_header(msg, name) or ""
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
    raw_value = raw_header(msg, name)
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


def header_date(msg: Message) -> datetime | None:
    raw = raw_header(msg, "Date")
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(clean_header(raw))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
