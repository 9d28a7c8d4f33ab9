"""Changing mail on the IMAP server: marking read, releasing or discarding held mail,
manage_email's actions, and the agent's drafts in the Drafts folder; the index follows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from workflows.mail.parsing import parse_email
from workflows.providers.smtp_imap.imap import ImapError, ImapSession
from workflows.providers.smtp_imap.moves import after_move, locate
from workflows.providers.smtp_imap.session import log
from workflows.providers.smtp_imap.sync import Sync
from workflows.read_models import Action, EmailChange, EmailSummary, StoredEmail


async def _trash_folder(session: ImapSession) -> str:
    """The server's trash: its RFC 6154 \\Trash folder, else one named Trash."""
    return await session.special_use("\\Trash") or "Trash"


class Manage(Sync):
    """SmtpImapProvider's changes to stored mail and drafts."""

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

    async def is_trash(self, mailbox: str, folder: str) -> bool:
        """Also the server's \\Trash special-use folder ([Gmail]/Trash, Deleted Items, ...)."""
        self._own(mailbox)
        if folder.strip().lower() == "trash" or self.config.imap is None:
            return folder.strip().lower() == "trash"
        try:
            async with self._lock:
                trash = await _trash_folder(await self._imap())
        except ImapError as exc:
            await self._drop()
            raise ValueError(f"the IMAP server could not say which folder is its trash: {exc}") from exc
        # IMAP names are case-sensitive, but a near miss is treated as the trash: it errs toward asking.
        return folder.strip().lower() == trash.lower()

    async def manage(self, mailbox: str, email_id: str, action: Action, target: str | None, actor: str) -> str:
        """On the server first (MOVE, keywords, \\Seen), then in the index. The email is found by
        its UID, or (moved by another client) again by Message-ID (moves.py); mail the server no
        longer has anywhere changes in the index only."""
        self._own(mailbox)
        await asyncio.to_thread(self.index.fetch_email, mailbox, email_id)  # held or hidden: EmailNotFound
        row = int(email_id.strip())
        tracked = await asyncio.to_thread(self.index.uid_of, row)
        if self.config.imap is not None:
            try:
                async with self._lock:
                    session = await self._imap()
                    located = await locate(session, self.config, self.index, row, tracked)
                    if located is None:
                        pass  # nowhere on the server now: the index alone changes
                    elif action in ("archive", "trash", "move"):
                        if action == "trash":
                            dest = await _trash_folder(session)
                        else:
                            dest = "Archive" if action == "archive" else target or ""
                        if dest.lower() == "inbox":
                            dest = self.config.inbox_folder
                        folder, uid = located
                        if dest != folder:
                            if not await session.exists(dest):
                                await session.create(dest)
                            await session.move(uid, dest)
                            await after_move(session, self.index, row, dest)
                    elif action in ("label", "unlabel"):
                        await session.set_keyword(located[1], target or "", action == "label")
                    else:
                        await session.set_seen(located[1], action == "mark_read")
            except ImapError as exc:
                await self._drop()
                raise ValueError(f"the IMAP server did not do it: {exc}") from exc
        return await asyncio.to_thread(self.index.manage, mailbox, email_id, action, target, actor)

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
                    trash = await _trash_folder(session)
                    await session.select(located[0])
                    if not await session.exists(trash):
                        await session.create(trash)
                    await session.move(located[1], trash)
            except ImapError as exc:
                await self._drop()
                raise ValueError(f"the IMAP server did not delete the draft: {exc}") from exc
            await asyncio.to_thread(self.index.forget_uid, located[0], located[1])
        await asyncio.to_thread(self.index.delete_draft, mailbox, draft_id)
