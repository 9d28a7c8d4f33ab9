"""Following mail that moved on the IMAP server, so that an email keeps its id.

Email ids are rows of the local index, tied to the server by (folder, UID). A move changes the
UID (and the folder): after our own MOVE the new UID is looked up by Message-ID in the target
folder; a message another client moved out of the inbox is noticed at sync (its UID is gone)
and found again by Message-ID in the other folders; one acted on whose UID is gone is found the
same way first. Mail moved back into the inbox maps onto its old row at sync (imap_index.known).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from workflows.providers.smtp_imap.imap import ImapSession
from workflows.providers.smtp_imap.index import ImapIndex

# At most this many vanished messages are looked for per sync; the rest at the next one.
FOLLOW_PER_SYNC = 50


class Folders(Protocol):
    @property
    def inbox_folder(self) -> str: ...
    @property
    def sent_folder(self) -> str: ...
    @property
    def drafts_folder(self) -> str: ...


def index_folder(config: Folders, server_folder: str) -> str | None:
    """The index's folder for a server folder, or None for folders that hold no inbox mail."""
    if server_folder.upper() == "INBOX" or server_folder == config.inbox_folder:
        return "inbox"
    if server_folder in (config.sent_folder, config.drafts_folder):
        return None
    lower = server_folder.lower()
    return lower if lower in ("archive", "trash") else server_folder


async def _search(
    session: ImapSession, config: Folders, message_ids: dict[int, str], skip: str
) -> dict[int, tuple[str, int]]:
    """Where each message (key -> Message-ID) is now, in any folder but ``skip``, Sent and Drafts."""
    found: dict[int, tuple[str, int]] = {}
    for folder in await session.folders():
        if len(found) == len(message_ids):
            break
        if folder == skip or index_folder(config, folder) is None:
            continue
        await session.select(folder)
        for key, message_id in message_ids.items():
            if key not in found:
                hits = await session.search_message_id(message_id)
                if hits:
                    found[key] = (folder, max(hits))
    return found


async def follow_vanished(
    session: ImapSession, config: Folders, index: ImapIndex, folder: str, present: set[int]
) -> int:
    """Messages the index tracks in ``folder`` whose UIDs the server no longer has there (another
    client moved or deleted them): found again elsewhere by Message-ID. Returns how many."""
    tracked = await asyncio.to_thread(index.tracked, folder)
    gone = sorted(uid for uid in tracked if uid not in present)[:FOLLOW_PER_SYNC]
    if not gone:
        return 0
    found = await _search(session, config, {uid: tracked[uid][1] for uid in gone}, folder)
    for uid in gone:
        where = found.get(uid)
        to = index_folder(config, where[0]) if where else None
        await asyncio.to_thread(index.relocate, tracked[uid][0], where, to)
    return len(gone)


async def locate(
    session: ImapSession, config: Folders, index: ImapIndex, row: int, tracked: tuple[str, int] | None
) -> tuple[str, int] | None:
    """Where the email ``row`` is on the server now, with that folder selected; None if nowhere."""
    if tracked is not None:
        await session.select(tracked[0])
        if await session.has_uid(tracked[1]):
            return tracked
    message_id = await asyncio.to_thread(index.message_id_of, row)
    if not message_id:
        return None
    where = (await _search(session, config, {row: message_id}, "")).get(row)
    to = index_folder(config, where[0]) if where else None
    await asyncio.to_thread(index.relocate, row, where, to)
    if where is not None:
        await session.select(where[0])
    return where


async def after_move(session: ImapSession, index: ImapIndex, row: int, dest: str) -> None:
    """Track the message under its new UID in ``dest`` (so later actions reach the server)."""
    message_id = await asyncio.to_thread(index.message_id_of, row)
    await session.select(dest)
    hits = await session.search_message_id(message_id) if message_id else []
    await asyncio.to_thread(index.relocate, row, (dest, max(hits)) if hits else None, None)
