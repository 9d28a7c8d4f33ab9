"""Any mailbox on an SMTP server and an IMAP server: Gmail, Fastmail, Outlook, Dovecot, ...

Sending: SMTP (``smtp.py``), then a copy appended to the Sent folder unless the server files
one itself. Before every delivery the Sent folder (and the local index) is searched for the
send's fixed Message-ID; found means an earlier attempt went out (its connection was lost
during DATA, or the worker died before recording success), and it is not sent again.

Reading: the IMAP folders are synced into a local index (``index.py``) by UID; all reads
answer from it. A background task keeps an IDLE connection on the inbox when the server offers
IDLE, so new mail is noticed within a second; otherwise the mailbox watcher's poll syncs
(``sync.py``). Changes and drafts are in ``manage.py``, the IMAP session in ``session.py``.

With no IMAP server the mailbox is send-only (a transactional relay): it sends, checks only its
own index before a resend, and every read refuses with NoInbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from workflows.mail.mime import build_message, envelope_recipients
from workflows.models import DeliveryReceipt, DeliveryRequest
from workflows.providers.base import (
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from workflows.providers.smtp_imap.imap import ImapError
from workflows.providers.smtp_imap.manage import Manage
from workflows.providers.smtp_imap.session import log
from workflows.providers.smtp_imap.smtp import AmbiguousDelivery, SmtpServer, smtp_send
from workflows.read_models import Changes, EmailPage, EmailQuery, EmailSummary, StoredEmail


class SmtpImapProvider(Manage):
    """A mailbox on an SMTP server and (unless send-only) an IMAP server."""

    async def send(self, request: DeliveryRequest) -> DeliveryReceipt:
        recipients = envelope_recipients(request)
        if not recipients:
            raise PermanentDeliveryError("the email has no recipients")
        raw = build_message(request).as_bytes()
        if self.config.sent_check and await self._already_sent(request.message_id):
            log.warning("%s is in %s already: not sending it again", request.message_id, self.config.sent_folder)
            return DeliveryReceipt(message_id=request.message_id, recipients=tuple(recipients))
        server = SmtpServer(self.config.smtp, self._password, self._tls, oauth=self._oauth)
        try:
            answer = await smtp_send(server, self.config.address, recipients, raw)
        except AmbiguousDelivery as exc:
            await asyncio.to_thread(self.index.record_attempt, request.message_id, "ambiguous", str(exc))
            raise TemporaryDeliveryError(
                f"{exc}; the server may have accepted it, so before resending mailgate looks for "
                f"{request.message_id} in {self.config.sent_folder}"
            ) from exc
        await asyncio.to_thread(self.index.record_attempt, request.message_id, "sent", answer)
        if request.system:
            # A notice to humans with decision links: kept out of the Sent folder the agent reads.
            return DeliveryReceipt(message_id=request.message_id, recipients=tuple(recipients))
        await asyncio.to_thread(self.index.record_sent, raw)
        if not self.config.server_files_sent and self.config.imap is not None:
            await self._file_sent(raw, request.date)
        return DeliveryReceipt(message_id=request.message_id, recipients=tuple(recipients))

    async def _already_sent(self, message_id: str) -> bool:
        """Evidence that this Message-ID went out: our index (a Sent copy, or a recorded SMTP
        acceptance, which is all a notice kept out of Sent leaves), or the server's Sent folder."""
        if await asyncio.to_thread(self.index.has_sent, message_id):
            return True
        if any(outcome == "sent" for outcome, _ in await asyncio.to_thread(self.index.attempts, message_id)):
            return True
        if self.config.imap is None:
            return False  # no Sent folder to look in: the index is all the evidence there is
        try:
            async with self._lock:
                session = await self._imap()
                if not await session.exists(self.config.sent_folder):
                    return False
                await session.select(self.config.sent_folder)
                return bool(await session.search_message_id(message_id))
        except ImapError as exc:
            # Unsure: sending now could duplicate an earlier attempt; wait for IMAP to answer.
            await self._drop()
            raise TemporaryDeliveryError(f"cannot check {self.config.sent_folder} before sending: {exc}") from exc

    async def _file_sent(self, raw: bytes, date: datetime) -> None:
        """Append the Sent copy. The mail is out already: failing here must not cause a resend."""
        for attempt in range(3):
            try:
                async with self._lock:
                    session = await self._imap()
                    if not await session.exists(self.config.sent_folder):
                        await session.create(self.config.sent_folder)
                    await session.append(self.config.sent_folder, raw, r"(\Seen)", date)
                return
            except ImapError as exc:
                await self._drop()
                log.warning("appending to %s failed (try %d): %s", self.config.sent_folder, attempt + 1, exc)
                await asyncio.sleep(0.5 * (attempt + 1))
        log.error(
            "the sent message has no copy in %s on the server (it is in mailgate's index)", self.config.sent_folder
        )

    async def list_emails(self, mailbox: str, query: EmailQuery) -> EmailPage:
        self._own(mailbox)
        if self.config.imap is None:
            raise self._no_inbox()
        if query.cursor is None and not query.held:
            await self._fresh()
        return await asyncio.to_thread(self.index.list_emails, mailbox, query)

    async def search(self, mailbox: str, query: str, limit: int, cursor: str | None) -> EmailPage:
        self._own(mailbox)
        if cursor is None:
            await self._fresh()
        return await asyncio.to_thread(self.index.search, mailbox, query, limit, cursor)

    async def fetch_email(self, mailbox: str, email_id: str, *, include_held: bool = False) -> StoredEmail:
        self._own(mailbox)
        if self.config.imap is None:
            raise self._no_inbox()
        return await asyncio.to_thread(self.index.fetch_email, mailbox, email_id, include_held=include_held)

    async def changes(self, mailbox: str, cursor: str | None, limit: int = 100) -> Changes:
        self._own(mailbox)
        # Sync first, also with no cursor: the present is after everything already on the server,
        # so a new watcher never takes a mailbox's old mail for new mail. An IMAP error fails the
        # watcher's scan, which retries.
        await self.sync()
        return await asyncio.to_thread(self.index.changes, mailbox, cursor, limit)

    async def find_reply(self, mailbox: str, message_id: str) -> EmailSummary | None:
        self._own(mailbox)
        if self.config.imap is None:
            return None  # replies go somewhere mailgate cannot see
        return await asyncio.to_thread(self.index.find_reply, mailbox, message_id)

    async def create_mailbox(self, address: str) -> None:
        """Check the login now (a wrong password shows at start-up), and make the Sent folder."""
        self._own(address)
        if self.config.imap is None:
            return
        try:
            async with self._lock:
                session = await self._imap()
                if not self.config.server_files_sent and not await session.exists(self.config.sent_folder):
                    await session.create(self.config.sent_folder)
        except ImapError:
            await self._drop()
            raise

    async def aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
            self._watcher = None
        async with self._lock:
            await self._drop()
        await asyncio.to_thread(self.index.close)
