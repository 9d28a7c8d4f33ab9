"""Any mailbox on an SMTP server and an IMAP server: Gmail, Fastmail, Outlook, Dovecot, ...

Sending: SMTP (``smtp.py``), then a copy appended to the Sent folder unless the server files
one itself. Before every delivery the Sent folder (and the local index) is searched for the
send's fixed Message-ID; found means an earlier attempt went out (its connection was lost
during DATA, or the worker died before recording success), and it is not sent again.

Reading: the IMAP folders are synced into a local index (``index.py``) by UID; all reads
answer from it. A background task keeps an IDLE connection on the inbox when the server offers
IDLE, so new mail is noticed within a second; otherwise the mailbox watcher's poll syncs.

With no IMAP server the mailbox is send-only (a transactional relay): it sends, checks only its
own index before a resend, and every read refuses with NoInbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from workflows.mail.mime import build_message, envelope_recipients
from workflows.mail.parsing import parse_email
from workflows.models import DeliveryReceipt, DeliveryRequest, Frozen
from workflows.providers.base import (
    EmailNotFound,
    EmailProvider,
    InboundHooks,
    NoHooks,
    NoInbox,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from workflows.providers.endpoints import Endpoint, tls_context
from workflows.providers.oauth import OAuthError, OAuthTokens, ReauthNeeded
from workflows.providers.smtp_imap.imap import ImapError, ImapLoginRefused, ImapSession
from workflows.providers.smtp_imap.index import ImapIndex, Kind, stable_message_id
from workflows.providers.smtp_imap.smtp import AmbiguousDelivery, SmtpServer, smtp_send
from workflows.read_models import Action, Changes, EmailChange, EmailPage, EmailQuery, EmailSummary, StoredEmail

log = logging.getLogger("mailgate.smtp_imap")
BATCH = 50
HEADER_PARTS = "(UID FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
BODY_PARTS = "(UID FLAGS INTERNALDATE BODY.PEEK[])"


class SmtpImapConfig(Frozen):
    """A mailbox's servers and folders; no secret (the password is handed to the provider apart)."""

    address: str
    smtp: Endpoint
    imap: Endpoint | None
    sent_folder: str = "Sent"
    inbox_folder: str = "INBOX"
    drafts_folder: str = "Drafts"
    server_files_sent: bool = False
    sent_check: bool = True
    tls_ca_file: Path | None = None
    # A read is answered from the index; one older than this syncs first (a cheap SELECT when idle).
    fresh_seconds: float = 2.0
    idle_seconds: float = 25 * 60
    reconnect_seconds: float = 5.0


class SmtpImapProvider(EmailProvider):
    name = "smtp_imap"

    def __init__(
        self,
        config: SmtpImapConfig,
        password: str,
        index: ImapIndex,
        hooks: InboundHooks | None = None,
        oauth: OAuthTokens | None = None,
    ) -> None:
        self.config = config
        self._oauth = oauth
        self.index = index
        self.hooks: InboundHooks = hooks or NoHooks()
        self._password = password
        self._tls = tls_context(config.tls_ca_file)
        self._session: ImapSession | None = None
        self._lock = asyncio.Lock()  # one command at a time on the shared session; one sync at a time
        self._synced_at = 0.0
        self._watcher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:  # never the password
        return f"SmtpImapProvider({self.config.address}, {self.config.smtp}, {self.config.imap})"

    # --- IMAP session --------------------------------------------------------------------------

    @property
    def has_inbox(self) -> bool:
        return self.config.imap is not None

    def _no_inbox(self) -> NoInbox:
        return NoInbox(f"mailbox {self.config.address} is send-only: it has no inbox (no imap_url is configured)")

    async def _imap(self) -> ImapSession:
        if self.config.imap is None:
            raise self._no_inbox()
        if self._session is None or self._session.lost:
            if self._session is not None:
                await self._session.close()
            self._session = None
            self._session = await self._open()
        return self._session

    async def _open(self) -> ImapSession:
        """Log in with the password, or with an OAuth token (renewed once if the server refuses it)."""
        assert self.config.imap is not None
        if self._oauth is None:
            return await ImapSession.open(self.config.imap, self._password, self._tls)
        for attempt in range(2):
            try:
                token = await self._oauth.access_token()
            except (ReauthNeeded, OAuthError) as exc:
                raise ImapError(str(exc)) from exc
            try:
                return await ImapSession.open(self.config.imap, "", self._tls, oauth_token=token)
            except ImapLoginRefused as exc:
                self._oauth.refused(token)
                if attempt == 1:
                    raise ImapError(f"{exc}; re-run `mailgate auth login {self.config.address}`") from exc
        raise AssertionError("unreachable")

    async def _drop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- sending -------------------------------------------------------------------------------

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

    # --- syncing -------------------------------------------------------------------------------

    async def sync(self) -> int:
        """Fetch what is new in Sent and the inbox; returns how many inbox messages became visible."""
        if self.config.imap is None:
            return 0
        async with self._lock:
            try:
                session = await self._imap()
                held = await self.hooks.holds(self.config.address)
                await self._sync_folder(session, self.config.sent_folder, "sent", held=False)
                fresh = await self._sync_folder(session, self.config.inbox_folder, "inbox", held=held)
            except ImapError:
                await self._drop()
                raise
            self._synced_at = time.monotonic()
        return fresh

    async def _sync_folder(self, session: ImapSession, folder: str, kind: Kind, *, held: bool) -> int:
        if kind == "sent" and not await session.exists(folder):
            return 0
        state = await session.select(folder)
        known = await asyncio.to_thread(self.index.folder_state, folder)
        last_uid = 0
        if known is None or known[0] != state.uidvalidity:
            # New folder, or the server renumbered it: fetch everything again; the index matches
            # messages by Message-ID, so nothing is stored twice.
            await asyncio.to_thread(self.index.reset_folder, folder, state.uidvalidity)
        else:
            last_uid = known[1]
        fresh = 0
        if state.uidnext is None or state.uidnext > last_uid + 1:
            uids = await session.uids_from(last_uid + 1)
            for start in range(0, len(uids), BATCH):
                fresh += await self._fetch_batch(session, folder, kind, uids[start : start + BATCH], held=held)
        if state.exists:
            flags = await session.fetch_flags()
            await asyncio.to_thread(self.index.apply_flags, folder, {f.uid: f.seen for f in flags})
        return fresh

    async def _fetch_batch(self, session: ImapSession, folder: str, kind: Kind, uids: list[int], *, held: bool) -> int:
        heads = await session.fetch(uids, HEADER_PARTS)
        # Parsed in a worker thread: these headers come from strangers, and this runs on the event loop.
        ids = await asyncio.to_thread(
            lambda: {h.uid: _header_message_id(h.literals[0] if h.literals else b"") for h in heads}
        )
        known = await asyncio.to_thread(self.index.known, kind, [i for i in ids.values() if i])
        mapped = {uid: known[mid] for uid, mid in ids.items() if mid and mid in known}
        wanted = [uid for uid in uids if uid not in mapped]
        bodies = await session.fetch(wanted, BODY_PARTS)
        new = [(b.uid, b.literals[0], b.seen, b.internaldate) for b in bodies if b.literals]
        # Mail without a Message-ID gets one made from its bytes; it may be known under that one.
        made = {b.uid: stable_message_id(b.literals[0], "") for b in bodies if b.literals and not ids.get(b.uid)}
        if made:
            known_made = await asyncio.to_thread(self.index.known, kind, list(made.values()))
            mapped.update({uid: known_made[mid] for uid, mid in made.items() if mid in known_made})
            new = [item for item in new if item[0] not in mapped]
        added = await asyncio.to_thread(
            self.index.store_batch, folder, kind, mapped, new, max(uids, default=0), held=held
        )
        return added if kind == "inbox" and not held else 0

    async def _fresh(self) -> None:
        if time.monotonic() - self._synced_at < self.config.fresh_seconds:
            return
        before = await self._cursor()
        try:
            fresh = await self.sync()
        except ImapError as exc:
            log.warning("IMAP sync of %s failed; answering from the index: %s", self.config.address, exc)
            return
        if fresh:
            await self.hooks.arrived([self.config.address], before)

    async def _cursor(self) -> str:
        return (await asyncio.to_thread(self.index.changes, "", None)).cursor

    async def start(self) -> None:
        """Keep the index fresh from the server's IDLE pushes (when it offers IDLE)."""
        if self._watcher is None and self.config.imap is not None:
            self._watcher = asyncio.create_task(self._idle_loop(), name=f"imap-idle-{self.config.address}")

    async def _idle_loop(self) -> None:
        assert self.config.imap is not None
        while True:
            session: ImapSession | None = None
            try:
                session = await self._open()
                if not session.has("IDLE"):
                    log.info("%s offers no IDLE: new mail is found by polling", self.config.imap)
                    return
                await session.select(self.config.inbox_folder)
                while True:
                    await self._fresh_now()
                    await session.idle(self.config.idle_seconds)
            except ImapError as exc:
                log.warning("IMAP IDLE for %s: %s; reconnecting", self.config.address, exc)
            except Exception:
                log.exception("IMAP IDLE for %s failed; reconnecting", self.config.address)
            finally:
                if session is not None:
                    await session.close()
            await asyncio.sleep(self.config.reconnect_seconds)

    async def _fresh_now(self) -> None:
        self._synced_at = 0.0
        await self._fresh()

    # --- reading -------------------------------------------------------------------------------

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

    async def change_email(self, mailbox: str, email_id: str, change: EmailChange, actor: str) -> EmailSummary:
        self._own(mailbox)
        if self.config.imap is None:
            raise self._no_inbox()
        before = await self._cursor()
        if change == "read" and email_id.strip().isdigit():
            located = await asyncio.to_thread(self.index.uid_of, int(email_id))
            if located is not None:
                try:
                    async with self._lock:
                        session = await self._imap()
                        await session.select(located[0])
                        await session.set_seen(located[1], True)
                except ImapError as exc:
                    # Read in mailgate now; the server learns it when \Seen can be stored.
                    await self._drop()
                    log.warning("could not store \\Seen for %s on the server: %s", email_id, exc)
        changed = await asyncio.to_thread(self.index.change_email, mailbox, email_id, change, actor)
        if change == "release":
            await self.hooks.arrived([mailbox], before)
        return changed

    async def manage(self, mailbox: str, email_id: str, action: Action, target: str | None, actor: str) -> str:
        """On the server first (MOVE, keywords, \\Seen), then in the index. Mail moved earlier is
        no longer tracked by UID; later actions on it change the index only."""
        self._own(mailbox)
        await asyncio.to_thread(self.index.fetch_email, mailbox, email_id)  # held or hidden: EmailNotFound
        located = await asyncio.to_thread(self.index.uid_of, int(email_id.strip()))
        if located is not None:
            folder, uid = located
            try:
                async with self._lock:
                    session = await self._imap()
                    await session.select(folder)
                    if action in ("archive", "trash", "move"):
                        dest = {"archive": "Archive", "trash": "Trash"}.get(action) or target or ""
                        if dest.lower() == "inbox":
                            dest = self.config.inbox_folder
                        if dest != folder:
                            if not await session.exists(dest):
                                await session.create(dest)
                            await session.move(uid, dest)
                            await asyncio.to_thread(self.index.forget_uid, folder, uid)
                    elif action in ("label", "unlabel"):
                        await session.set_keyword(uid, target or "", action == "label")
                    else:
                        await session.set_seen(uid, action == "mark_read")
            except ImapError as exc:
                await self._drop()
                raise ValueError(f"the IMAP server did not do it: {exc}") from exc
        return await asyncio.to_thread(self.index.manage, mailbox, email_id, action, target, actor)

    # --- drafts: APPENDed to the Drafts folder with \\Draft, tracked by UID in the index ---------

    async def save_draft(self, mailbox: str, raw: bytes, draft_id: str | None = None) -> str:
        self._own(mailbox)
        old = None
        if draft_id is not None:
            await asyncio.to_thread(self.index.draft, mailbox, draft_id)  # EmailNotFound if not ours
            old = await asyncio.to_thread(self.index.uid_of, int(draft_id.strip()))
        message_id = parse_email(raw).message_id
        folder = self.config.drafts_folder
        try:
            async with self._lock:
                session = await self._imap()
                if not await session.exists(folder):
                    await session.create(folder)
                await session.append(folder, raw, r"(\Draft \Seen)", datetime.now(UTC))
                await session.select(folder)
                uids = await session.search_message_id(message_id)
                if old is not None:
                    # The superseded version of the agent's own draft: replaced, so nothing is lost.
                    await session.select(old[0])
                    await session.expunge_uid(old[1])
        except ImapError as exc:
            await self._drop()
            raise ValueError(f"the IMAP server did not save the draft: {exc}") from exc
        saved = await asyncio.to_thread(self.index.save_draft, mailbox, raw, draft_id)
        if old is not None:
            await asyncio.to_thread(self.index.forget_uid, old[0], old[1])
        if uids:
            await asyncio.to_thread(self.index.remember_uid, folder, max(uids), int(saved))
        return saved

    async def drafts(self, mailbox: str, limit: int = 100) -> list[EmailSummary]:
        self._own(mailbox)
        return await asyncio.to_thread(self.index.drafts, mailbox, limit)

    async def draft(self, mailbox: str, draft_id: str) -> StoredEmail:
        self._own(mailbox)
        return await asyncio.to_thread(self.index.draft, mailbox, draft_id)

    async def delete_draft(self, mailbox: str, draft_id: str) -> None:
        """To the server's Trash (never expunged), out of the index's drafts."""
        self._own(mailbox)
        await asyncio.to_thread(self.index.draft, mailbox, draft_id)
        located = await asyncio.to_thread(self.index.uid_of, int(draft_id.strip()))
        if located is not None:
            try:
                async with self._lock:
                    session = await self._imap()
                    await session.select(located[0])
                    if not await session.exists("Trash"):
                        await session.create("Trash")
                    await session.move(located[1], "Trash")
            except ImapError as exc:
                await self._drop()
                raise ValueError(f"the IMAP server did not delete the draft: {exc}") from exc
            await asyncio.to_thread(self.index.forget_uid, located[0], located[1])
        await asyncio.to_thread(self.index.delete_draft, mailbox, draft_id)

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

    def _own(self, mailbox: str) -> None:
        if mailbox.lower() != self.config.address.lower():
            raise EmailNotFound(f"{mailbox} is not served by this IMAP connection ({self.config.address})")

    async def aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
            self._watcher = None
        async with self._lock:
            await self._drop()
        await asyncio.to_thread(self.index.close)


def _header_message_id(header: bytes) -> str:
    return parse_email(header + b"\r\n").message_id
