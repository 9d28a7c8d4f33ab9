"""The sandbox's SMTP listener: any SMTP client can deliver into sandbox mailboxes.

It accepts mail only for sandbox mailboxes (no relaying), refuses unknown recipients with
550 and oversized messages with 552, and stores each message as untrusted inbound mail.
"""

from __future__ import annotations

import asyncio
import uuid
from email import message_from_bytes, policy

from aiosmtpd.smtp import SMTP, Envelope, Session

from workflows.providers.sandbox import SandboxStore

MAX_MESSAGE_BYTES = 10 * 1024 * 1024


class SandboxHandler:
    def __init__(self, store: SandboxStore) -> None:
        self.store = store

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not await asyncio.to_thread(self.store.is_local, address):
            return "550 5.1.1 No such mailbox here; this sandbox does not relay"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if not raw.strip():
            return "554 5.6.0 Empty message"
        msg = message_from_bytes(raw, policy=policy.compat32)
        if not msg.get("Message-ID"):
            # A real MTA adds one too; threading and deduplication key on it.
            raw = f"Message-ID: <{uuid.uuid4().hex}@sandbox.mailgate.local>\r\n".encode() + raw
        await asyncio.to_thread(self.store.deliver, raw, envelope.mail_from or "", list(envelope.rcpt_tos))
        return "250 2.0.0 Message accepted"


async def start_smtp_listener(store: SandboxStore, host: str, port: int) -> asyncio.Server:
    handler = SandboxHandler(store)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, data_size_limit=MAX_MESSAGE_BYTES, hostname="mailgate-sandbox", loop=loop),
        host=host,
        port=port,
    )
