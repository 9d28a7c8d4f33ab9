"""A real SMTP server for tests: aiosmtpd with AUTH and STARTTLS (or implicit TLS), and faults.

It keeps every message it accepted (envelope and bytes). Faults are queued per stage: an SMTP
reply instead of success (``421``, ``451``, ``550``...), ``drop``: accept the message, then
cut the connection before answering DATA (the ambiguous window), or ``slow:SECONDS``: accept
and keep the message, then wait that long before answering (a cancel or shutdown lands there).
``file_sent`` makes it behave like Gmail or Outlook, which file a copy of each accepted message
in the sender's Sent folder.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from base64 import b64decode
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.peers.certs import write_self_signed
from tests.support.ports import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    authenticated: bool = True

    @property
    def message_id(self) -> str:
        return str(message_from_bytes(self.data).get("Message-ID", "")).strip()


@dataclass
class Sink:
    """The handler: what was accepted, and the faults still to play."""

    users: dict[str, str]
    received: list[Received] = field(default_factory=list)
    faults: dict[str, deque[str]] = field(default_factory=lambda: {"RCPT": deque(), "DATA": deque()})
    file_sent: Callable[[bytes], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, stage: str, *replies: str) -> None:
        self.faults[stage].extend(replies)

    def _fault(self, stage: str) -> str | None:
        with self.lock:
            return self.faults[stage].popleft() if self.faults[stage] else None

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth: Any) -> AuthResult:
        ok = isinstance(auth, LoginPassword) and self.users.get(auth.login.decode()) == auth.password.decode()
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        fault = self._fault("RCPT")
        if fault:
            return fault
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fault = self._fault("DATA")
        if fault and fault != "drop" and not fault.startswith("slow:"):
            return fault
        data = bytes(envelope.original_content or b"")
        with self.lock:
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), data, bool(session.authenticated))
            )
        if self.file_sent is not None:
            self.file_sent(data)
        if fault == "drop":
            # Accepted and kept, but the client never hears so: the connection-lost-after-DATA window.
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
            return "250 OK (never heard)"
        if fault and fault.startswith("slow:"):
            await asyncio.sleep(float(fault.partition(":")[2]))
        return "250 OK queued"

    def ids(self) -> list[str]:
        with self.lock:
            return [r.message_id for r in self.received]


@dataclass
class OAuthSink(Sink):
    """A sink that takes only AUTH XOAUTH2, checking each token at the authorization server's
    introspection endpoint (as resource server ``rs``)."""

    introspect_url: str = ""
    rs_secret: str = ""
    mechanisms: list[str] = field(default_factory=list)  # the mechanism of each successful AUTH

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        user, token = "", ""
        if len(args) >= 2:
            fields = b64decode(args[1]).decode(errors="replace").split("\x01")
            user = next((f[5:] for f in fields if f.startswith("user=")), "")
            token = next((f[12:] for f in fields if f.startswith("auth=Bearer ")), "")
        return await self._check(server, "XOAUTH2", user, token)

    async def _check(self, server: SMTP, mechanism: str, user: str, token: str) -> AuthResult:
        if token:
            async with httpx.AsyncClient(timeout=10) as http:
                answer = await http.post(self.introspect_url, data={"token": token}, auth=("rs", self.rs_secret))
            info = answer.json()
            if info.get("active") and info.get("username") == user:
                self.mechanisms.append(mechanism)
                return AuthResult(success=True, handled=False, auth_data=user)
        # RFC 7628: an error challenge, the client's dummy answer, then 535.
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(success=False, handled=False)


@dataclass
class OAuthBearerSink(OAuthSink):
    """The same, also offering OAUTHBEARER (RFC 7628): a GS2 header with the user, then
    host, port and auth fields separated by %x01."""

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        user, token = "", ""
        if len(args) >= 2:
            header, _, rest = b64decode(args[1]).decode(errors="replace").partition("\x01")
            name = next((p[2:] for p in header.split(",") if p.startswith("a=")), "")
            user = name.replace("=2C", ",").replace("=3D", "=")
            token = next((f[12:] for f in rest.split("\x01") if f.startswith("auth=Bearer ")), "")
        return await self._check(server, "OAUTHBEARER", user, token)


class SmtpPeer:
    """A running sink: ``security`` "starttls" (required, with AUTH), "tls" (implicit) or "plain".
    ``auth=False``: a local relay that offers no AUTH at all and takes mail from anyone."""

    def __init__(
        self,
        directory: Path,
        security: str = "starttls",
        users: dict[str, str] | None = None,
        cert: tuple[Path, Path] | None = None,
        *,
        auth: bool = True,
        oauth_introspect: tuple[str, str] | None = None,
        oauthbearer: bool = False,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if cert is None:
            cert = directory / "smtp-cert.pem", directory / "smtp-key.pem"
            write_self_signed(*cert)
        self.cert, key = cert
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(self.cert, key)
        self.security = security
        users = users or {"agent@example.test": "smtp-secret"}
        self.sink: Sink = Sink(users)
        if oauth_introspect is not None:
            kind = OAuthBearerSink if oauthbearer else OAuthSink
            self.sink = kind(users, introspect_url=oauth_introspect[0], rs_secret=oauth_introspect[1])
        self.auth = auth
        self.port = 0
        self._controller: Controller | None = None

    def start(self, port: int = 0) -> SmtpPeer:
        """Listen on ``port`` (a free one by default; the same one again after ``stop``)."""
        port = port or self.port or free_port()
        kwargs: dict[str, Any] = {
            "authenticator": self.sink.authenticate,
            "auth_required": True,
            "auth_require_tls": self.security == "starttls",  # aiosmtpd cannot tell implicit TLS
        }
        if not self.auth:
            kwargs = {"auth_require_tls": False}
        if isinstance(self.sink, OAuthSink):
            kwargs["auth_exclude_mechanism"] = ["LOGIN", "PLAIN"]
        if self.security == "starttls":
            kwargs.update(tls_context=self.context, require_starttls=True)
        controller = Controller(
            self.sink,
            hostname="127.0.0.1",
            port=port,
            ssl_context=self.context if self.security == "tls" else None,
            **kwargs,
        )
        controller.start()
        self._controller = controller
        self.port = port
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def url(self) -> str:
        scheme = {"starttls": "smtp+starttls", "tls": "smtps", "plain": "smtp"}[self.security]
        if not self.auth:
            return f"{scheme}://127.0.0.1:{self.port}"
        return f"{scheme}://agent%40example.test@127.0.0.1:{self.port}"
