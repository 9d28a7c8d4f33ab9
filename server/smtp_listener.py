"""The sandbox's SMTP listener: any SMTP client can deliver into sandbox mailboxes.

It accepts mail only for sandbox mailboxes (no relaying), refuses unknown recipients with
550 and oversized messages with 552, and stores each message as untrusted inbound mail
(held for a human in ``gated_all`` mailboxes). When mailgate cannot tell whether a mailbox
holds its mail (Temporal unreachable), it answers 451 so the sender tries again later.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from aiosmtpd.smtp import SMTP, Envelope, Session

from workflows.parsing import parse_email
from workflows.providers.sandbox import SandboxProvider, UnknownHold

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
log = logging.getLogger("mailgate.smtp")


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
        if not parse_email(raw).message_id:
            # A real MTA adds one too; threading and deduplication key on it.
            raw = f"Message-ID: <{uuid.uuid4().hex}@sandbox.mailgate.local>\r\n".encode() + raw
        try:
            await self.provider.receive(raw, envelope.mail_from or "", list(envelope.rcpt_tos))
        except UnknownHold as exc:
            log.warning("deferred a message: %s", exc)
            return "451 4.3.0 Cannot deliver right now; try again later"
        return "250 2.0.0 Message accepted"


async def start_smtp_listener(provider: SandboxProvider, host: str, port: int) -> asyncio.Server:
    handler = SandboxHandler(provider)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, data_size_limit=MAX_MESSAGE_BYTES, hostname="mailgate-sandbox", loop=loop),
        host=host,
        port=port,
    )
