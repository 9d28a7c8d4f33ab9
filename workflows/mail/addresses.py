"""Strict parsing of email addresses and header text.

The standard library's parsers are lenient on purpose (CVE-2023-27043: ``parseaddr`` once
read ``alice@example.org)<bob@example.com>`` as a different address than a mail server
would). An agent's input deserves the opposite: one plain form per address, nothing that
a mail client could read two ways, and no way to smuggle a line break into a header.
"""

from __future__ import annotations

import re

from workflows.mail.visibility import invisible_error
from workflows.models import EmailAddress

MAX_SUBJECT_CHARS = 500
MAX_BODY_BYTES = 512 * 1024
MAX_NAME_CHARS = 100
MAX_RECIPIENTS = 50

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_ANGLE_RE = re.compile(r"^(?P<name>[^<>]*)<(?P<addr>[^<>]*)>$")
_ENCODED_WORD_RE = re.compile(r"=\?[^?]*\?[bBqQ]\?[^?]*\?=")
_NAME_FORBIDDEN = set('<>@",;:\\[]()')


class AddressError(ValueError):
    """An address or header value that mailgate refuses to put in an email."""


def check_header_text(value: str, field: str, max_chars: int) -> str:
    """Refuse control characters, invisible or direction-changing characters (what a human
    approves must read as it is) and RFC 2047 encoded words in text destined for a header.

    Encoded words are refused outright: mailgate encodes non-ASCII text itself, so an
    encoded word in the input can only be an attempt to hide a line break (CVE-2024-6923).
    """
    if len(value) > max_chars:
        raise AddressError(f"{field} is {len(value)} characters; the limit is {max_chars}")
    bad = next((c for c in value if ord(c) < 0x20 or ord(c) == 0x7F or c in "\u2028\u2029\x85"), None)
    if bad is not None:
        raise AddressError(f"{field} contains a control character ({bad!r}); line breaks are not allowed")
    if _ENCODED_WORD_RE.search(value):
        raise AddressError(f"{field} contains an RFC 2047 encoded word; send plain Unicode text instead")
    invisible = invisible_error(value, field)
    if invisible is not None:
        raise AddressError(invisible)
    return value


def _domain(raw: str) -> str:
    if not raw or raw.startswith("[") or len(raw) > 253:
        raise AddressError(f"invalid domain {raw!r}")
    try:
        ascii_domain = raw.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise AddressError(f"invalid domain {raw!r}") from exc
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise AddressError(f"invalid domain {raw!r}: use a fully qualified name such as example.com")
    return ascii_domain


def parse_addr_spec(raw: str) -> str:
    """``local@domain`` with a dot-atom local part; returns it with the domain lowered."""
    local, sep, domain = raw.rpartition("@")
    if not sep or not local:
        raise AddressError(f"{raw!r} is not an email address (expected name@example.com)")
    if len(local) > 64 or not _LOCAL_RE.fullmatch(local):
        raise AddressError(f"{raw!r}: the part before @ may hold only letters, digits, dots and !#$%&'*+/=?^_`{{|}}~-")
    address = f"{local}@{_domain(domain)}"
    if len(address) > 254:
        raise AddressError(f"{raw!r} is longer than 254 characters")
    return address


def parse_address(raw: str) -> EmailAddress:
    """One address: ``bob@example.com`` or ``Bob Smith <bob@example.com>``.

    Display names may not contain ``@`` or address punctuation, so a name can never pose as
    another address.
    """
    check_header_text(raw, "address", 400)
    text = raw.strip()
    match = _ANGLE_RE.match(text)
    if match is None:
        if any(c in text for c in '<>",; ') or text.count("@") != 1:
            raise AddressError(f"{raw!r} is not one plain address; use 'name@example.com' or 'Name <name@example.com>'")
        return EmailAddress(address=parse_addr_spec(text))
    name = match["name"].strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].strip()
    if len(name) > MAX_NAME_CHARS:
        raise AddressError(f"display name in {raw!r} is longer than {MAX_NAME_CHARS} characters")
    if any(c in _NAME_FORBIDDEN for c in name):
        raise AddressError(f'display name in {raw!r} may not contain any of <>@",;:\\[]()')
    return EmailAddress(name=name, address=parse_addr_spec(match["addr"].strip()))


def parse_addresses(raw: list[str], field: str) -> tuple[EmailAddress, ...]:
    parsed: list[EmailAddress] = []
    seen: set[str] = set()
    for item in raw:
        try:
            address = parse_address(item)
        except AddressError as exc:
            raise AddressError(f"{field}: {exc}") from exc
        if address.address.lower() not in seen:
            seen.add(address.address.lower())
            parsed.append(address)
    return tuple(parsed)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def matches(address: str, entry: str) -> bool:
    """An allow/deny entry: a full address, a domain (``example.com``) or subdomains (``*.example.com``).

    Compared on the parsed address, never as a substring: ``evil-example.com`` does not
    match ``example.com``.
    """
    entry = entry.strip().lower()
    address = address.lower()
    if "@" in entry and not entry.startswith("@"):
        return address == entry
    domain = domain_of(address)
    if entry.startswith("*."):
        return domain.endswith(entry[1:])
    return domain == entry.lstrip("@")
