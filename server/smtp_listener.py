"""The sandbox's SMTP listener: any SMTP client can deliver into sandbox mailboxes.

It accepts mail only for sandbox mailboxes (no relaying), refuses unknown recipients with
550 and oversized messages with 552, and stores each message as untrusted inbound mail
(held for a human in ``gated_all`` mailboxes). When mailgate cannot tell whether a mailbox
holds its mail (Temporal unreachable), it answers 451 so the sender tries again later.

It shares one process and its open-file limit with HTTP, MCP and the worker, so it bounds
what a client can hold: connections in total (at most a quarter of the open-file limit) and
per client address, idle time, session time and commands. A refused connection gets 421
and is closed at once; refusals are logged once a minute, not once each.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import time
import uuid
from collections import Counter
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from workflows.mail.parsing import parse_email_async
from workflows.providers.sandbox.provider import SandboxProvider, UnknownHold

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
MAX_CONNECTIONS = 100
MAX_PER_CLIENT = 10
IDLE_SECONDS = 60.0
SESSION_SECONDS = 600.0
COMMAND_LIMITS = {"RCPT": 200, "*": 30}  # per command and session (aiosmtpd answers 421 beyond)
REFUSAL_LOG_SECONDS = 60.0
DATA_BLOCK = 64 * 1024
log = logging.getLogger("mailgate.smtp")


def default_max_connections() -> int:
    """`MAX_CONNECTIONS`, or a quarter of the open-file limit when that is lower."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_CONNECTIONS if soft == resource.RLIM_INFINITY else max(1, min(MAX_CONNECTIONS, soft // 4))


class SandboxHandler:
    def __init__(self, provider: SandboxProvider) -> None:
        self.provider = provider

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not await asyncio.to_thread(self.provider.store.is_local, address):
            return "550 5.1.1 No such mailbox here; this sandbox does not relay"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if not raw.strip():
            return "554 5.6.0 Empty message"
        if not (await parse_email_async(raw)).message_id:
            # A real MTA adds one too; threading and deduplication key on it.
            raw = f"Message-ID: <{uuid.uuid4().hex}@sandbox.mailgate.local>\r\n".encode() + raw
        try:
            await self.provider.receive(raw, envelope.mail_from or "", list(envelope.rcpt_tos))
        except UnknownHold as exc:
            log.warning("deferred a message: %s", exc)
            return "451 4.3.0 Cannot deliver right now; try again later"
        return "250 2.0.0 Message accepted"


class ConnectionLimits:
    """Who may hold a connection now; refusals counted and logged at most once per interval."""

    def __init__(self, total: int, per_client: int, log_every: float = REFUSAL_LOG_SECONDS) -> None:
        self.total = total
        self.per_client = per_client
        self.active: Counter[str] = Counter()
        self.refused = 0  # since the process started
        self._log_every = log_every
        self._unlogged = 0
        self._logged_at = -float("inf")

    def admit(self, client: str) -> bool:
        if sum(self.active.values()) >= self.total:
            self._refuse(f"{self.total} connections open")
            return False
        if self.active[client] >= self.per_client:
            self._refuse(f"{self.per_client} connections open from {client}")
            return False
        self.active[client] += 1
        return True

    def release(self, client: str) -> None:
        self.active[client] -= 1
        if self.active[client] <= 0:
            del self.active[client]

    def _refuse(self, why: str) -> None:
        self.refused += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= self._log_every:
            log.warning("refused %d SMTP connection(s) (latest: %s)", self._unlogged, why)
            self._logged_at = now
            self._unlogged = 0


class LimitedSMTP(SMTP):
    """aiosmtpd's SMTP session, admitted by `ConnectionLimits` and ended after `SESSION_SECONDS`."""

    def __init__(self, handler: Any, limits: ConnectionLimits, session_seconds: float, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._limits = limits
        self._session_seconds = session_seconds
        self._client: str | None = None
        self._session_end: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._client is not None:  # STARTTLS: the same session on a new transport
            super().connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self._limits.admit(client):
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(b"421 4.7.0 Too many connections; try again later\r\n")
            transport.close()
            return
        self._client = client
        super().connection_made(transport)
        self._session_end = self.loop.call_later(self._session_seconds, transport.close)

    def connection_lost(self, error: Exception | None) -> None:
        if self._client is None:
            return  # refused: the session never started
        self._limits.release(self._client)
        if self._session_end is not None:
            self._session_end.cancel()
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        if self._client is None:
            return False
        return super().eof_received()

    def data_received(self, data: bytes) -> None:
        if self._client is not None:
            super().data_received(data)

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, reading blocks instead of lines.

        aiosmtpd handles each line in Python without yielding while its buffer holds more:
        a message of 3 million empty lines kept the event loop (HTTP, MCP) busy for seconds.
        """
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = bytearray(b"\r\n")  # the CRLF before the first line: the end marker may come at once
        too_much = False
        while True:
            chunk = await self._reader.read(DATA_BLOCK)
            if not chunk:
                return  # the client went away
            searched = max(0, len(data) - 4)
            data += chunk
            end = data.find(b"\r\n.\r\n", searched)
            if end >= 0:
                # Anything after the end marker is the client's next command: give it back.
                self._reader._buffer[:0] = data[end + 5 :]  # type: ignore[attr-defined]
                del data[end + 2 :]
                break
            if self.data_size_limit and len(data) > self.data_size_limit + 2:
                too_much = True
                del data[: len(data) - 4]  # keep what may be the start of the end marker
        if too_much:
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push("552 Error: Too much mail data")
            return
        # Dot-stuffing (RFC 5321 4.5.2): a line's leading dot was doubled by the client.
        content = bytes(data).replace(b"\r\n.", b"\r\n")[2:]
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(status)


async def start_smtp_listener(
    provider: SandboxProvider,
    host: str,
    port: int,
    *,
    max_connections: int | None = None,
    per_client: int = MAX_PER_CLIENT,
    idle_seconds: float = IDLE_SECONDS,
    session_seconds: float = SESSION_SECONDS,
    sock: socket.socket | None = None,
) -> asyncio.Server:
    """Listen on ``host``:``port``, or on ``sock`` when given (bound already, so that no other
    program could take the port meanwhile)."""
    handler = SandboxHandler(provider)
    limits = ConnectionLimits(max_connections or default_max_connections(), per_client)
    # aiosmtpd logs every connection and command line at INFO: a flood would fill the disk.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    loop = asyncio.get_running_loop()

    def protocol() -> LimitedSMTP:
        return LimitedSMTP(
            handler,
            limits,
            session_seconds,
            data_size_limit=MAX_MESSAGE_BYTES,
            hostname="mailgate-sandbox",
            timeout=idle_seconds,
            command_call_limit=COMMAND_LIMITS,
            loop=loop,
        )

    if sock is not None:
        return await loop.create_server(protocol, sock=sock)
    return await loop.create_server(protocol, host=host, port=port)
