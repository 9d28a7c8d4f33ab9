"""Where a mailbox's SMTP and IMAP servers are: URLs from the configuration, checked and parsed.

``smtp+starttls://user@host:587``, ``smtps://user@host:465`` and ``imaps://user@host:993`` are
encrypted. Plain ``smtp://`` and ``imap://`` are accepted only to a loopback address (a local
relay or a test server), because they would carry the password in clear text. Passwords never
appear in a URL: they come from the environment variable the mailbox names. An SMTP URL to a
loopback address may name no user: a local relay (Postfix, Mailpit) takes mail without AUTH.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from workflows.models import Frozen

Scheme = Literal["smtp", "smtps", "smtp+starttls", "imap", "imaps"]
Security = Literal["plain", "tls", "starttls"]

DEFAULT_PORTS: dict[str, int] = {"smtp": 25, "smtp+starttls": 587, "smtps": 465, "imap": 143, "imaps": 993}
SECURITY: dict[str, Security] = {
    "smtp": "plain",
    "smtp+starttls": "starttls",
    "smtps": "tls",
    "imap": "plain",
    "imaps": "tls",
}
SCHEMES = {"smtp": ("smtp+starttls", "smtps", "smtp"), "imap": ("imaps", "imap")}


class EndpointError(ValueError):
    """A URL that cannot be used; the message says why."""


class Endpoint(Frozen):
    scheme: Scheme
    host: str
    port: int
    username: str

    @property
    def security(self) -> Security:
        return SECURITY[self.scheme]

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_endpoint(url: str, kind: Literal["smtp", "imap"]) -> Endpoint:
    allowed = SCHEMES[kind]
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise EndpointError(f"{url!r} is not a URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in allowed:
        raise EndpointError(f"the scheme must be one of {', '.join(s + '://' for s in allowed)}, not {scheme!r}")
    if parts.password is not None:
        raise EndpointError("the URL holds a password: name an environment variable in password_env instead")
    host = parts.hostname or ""
    if not host:
        raise EndpointError(f"{url!r} names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise EndpointError("the URL may hold only user, host and port")
    username = unquote(parts.username or "")
    if not username and not (kind == "smtp" and is_loopback(host)):
        raise EndpointError(
            "the URL names no user (e.g. agent%40example.com@host: %40 for the @ of an address); "
            "only an SMTP relay on a loopback address may take mail without a login"
        )
    if SECURITY[scheme] == "plain" and not is_loopback(host):
        raise EndpointError(
            f"{scheme}:// sends the password in clear text, so it is allowed only to a loopback address; "
            f"use {allowed[0]}:// for {host}"
        )
    return Endpoint(scheme=scheme, host=host, port=port or DEFAULT_PORTS[scheme], username=username)


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verified TLS, against the system's CAs or (for a private or test server) one CA file."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
