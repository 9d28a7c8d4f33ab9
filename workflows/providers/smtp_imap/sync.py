"""Keeping the local index (``index.py``) in step with the IMAP server: Sent and the inbox fetched
by UID in batches, flags applied, and an IDLE connection that notices new mail within a second."""

from __future__ import annotations

import asyncio
import time

from workflows.mail.parsing import parse_email
from workflows.providers.smtp_imap.imap import ImapError, ImapSession
from workflows.providers.smtp_imap.index import Kind, stable_message_id
from workflows.providers.smtp_imap.moves import follow_vanished
from workflows.providers.smtp_imap.session import ImapAccount, log

BATCH = 50
HEADER_PARTS = "(UID FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
BODY_PARTS = "(UID FLAGS INTERNALDATE BODY.PEEK[])"


class Sync(ImapAccount):
    """The index's sync from the server, on demand and from IDLE pushes."""

    async def sync(self) -> int:
        """Fetch what is new in Sent and the inbox; returns how many inbox messages became visible."""
        if self.config.imap is None:
            return 0
        async with self._lock:
            # One sync of a mailbox at a time across every process that shares its index.
            if not await asyncio.to_thread(self.index.take_lease):
                return 0  # another process syncs it now; reads answer from the shared index
            try:
                session = await self._imap()
                held = await self.hooks.holds(self.config.address)
                await self._sync_folder(session, self.config.sent_folder, "sent", held=False)
                fresh = await self._sync_folder(session, self.config.inbox_folder, "inbox", held=held)
            except ImapError:
                await self._drop()
                raise
            finally:
                await asyncio.to_thread(self.index.drop_lease)
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
        flags = await session.fetch_flags() if state.exists else []
        if flags:
            await asyncio.to_thread(self.index.apply_flags, folder, {f.uid: f.seen for f in flags})
        if kind == "inbox":
            # What another client moved out of the inbox keeps its email id, found where it went.
            await follow_vanished(session, self.config, self.index, folder, {f.uid for f in flags})
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


def _header_message_id(header: bytes) -> str:
    return parse_email(header + b"\r\n").message_id
