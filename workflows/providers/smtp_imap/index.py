"""The index of one IMAP mailbox: what was synced, in the sandbox's mail index (SQLite or PostgreSQL).

Why a local copy: listings, threads and reply lookups then cost a SQLite query (as for the
sandbox) instead of IMAP round trips, threads are built once at arrival (JWZ over the whole
mailbox, which IMAP's THREAD extension does not give portably), and email ids, cursors and
``changes`` work exactly as for sandbox mailboxes. The IMAP server stays the truth: the index
is a cache that a full resync rebuilds (after a UIDVALIDITY change, or a new data dir).

A message is stored once per (folder kind, Message-ID): refetching after a dropped connection
or a UIDVALIDITY change maps the new UID onto the row already there, so nothing is duplicated.
``last_uid`` advances only in the transaction that stored the messages, so nothing is lost.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from workflows.mail.parsing import parse_email
from workflows.providers.sandbox.store import SandboxStore
from workflows.store import Database, Tx, migrate
from workflows.trust.marks import NoticeMarks

Kind = Literal["inbox", "sent"]

IMAP_SCHEMA = """
CREATE TABLE IF NOT EXISTS imap_folders (
    folder TEXT PRIMARY KEY,
    uidvalidity BIGINT NOT NULL,
    last_uid BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS imap_uids (
    folder TEXT NOT NULL,
    uid BIGINT NOT NULL,
    message BIGINT NOT NULL,
    PRIMARY KEY (folder, uid)
);
CREATE INDEX IF NOT EXISTS imap_uids_message ON imap_uids (message);
CREATE TABLE IF NOT EXISTS smtp_attempts (
    message_id TEXT NOT NULL,
    at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""
# UIDs are unsigned 32-bit: BIGINT on PostgreSQL (SQLite's INTEGER takes them either way).
SET_UID = "INSERT INTO imap_uids VALUES (?, ?, ?) ON CONFLICT (folder, uid) DO UPDATE SET message = excluded.message"


# Who syncs the mailbox now: the holder's lease ends when it is done, or by itself after
# LEASE_SECONDS (a process killed mid-sync), so a crashed holder never blocks the others.
# DOUBLE PRECISION: PostgreSQL's REAL has 4 bytes, too few for epoch seconds (about 2 minutes apart).
LEASE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sync_lease"
    " (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL)"
)
LEASE_SECONDS = 300.0


def _create(tx: Tx) -> None:
    for statement in IMAP_SCHEMA.split(";"):
        if statement.strip():
            tx.execute(statement)


def _create_lease(tx: Tx) -> None:
    tx.execute(LEASE_SCHEMA)


def stable_message_id(raw: bytes, message_id: str) -> str:
    """The Message-ID, or for mail without one an id made from its bytes (the same on every resync)."""
    return message_id or f"<{hashlib.sha256(raw).hexdigest()[:32]}@no-message-id.mailgate.invalid>"


class ImapIndex(SandboxStore):
    """The sandbox's store (messages, index columns, threads, ``seq``) plus UID bookkeeping."""

    def __init__(self, path: Path | Database, mailbox: str, marks: NoticeMarks | None = None) -> None:
        super().__init__(path, marks)
        self.mailbox = mailbox
        migrate(self.db, "imap", [_create, _create_lease])
        self.holder = uuid.uuid4().hex

    def take_lease(self, seconds: float = LEASE_SECONDS) -> bool:
        """Become the one syncer of this mailbox for ``seconds`` (or renew); False if another process is."""
        now = time.time()
        with self._tx() as db:
            taken = db.execute(
                "INSERT INTO sync_lease VALUES ('sync', ?, ?) ON CONFLICT (name) DO UPDATE"
                " SET holder = excluded.holder, expires = excluded.expires"
                " WHERE sync_lease.expires < ? OR sync_lease.holder = excluded.holder",
                (self.holder, now + seconds, now),
            ).rowcount
        return taken > 0

    def drop_lease(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sync_lease WHERE holder = ?", (self.holder,))

    def folder_state(self, folder: str) -> tuple[int, int] | None:
        rows = self._query("SELECT uidvalidity, last_uid FROM imap_folders WHERE folder = ?", (folder,))
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    def reset_folder(self, folder: str, uidvalidity: int) -> None:
        """A new UIDVALIDITY: the old UIDs mean nothing now; the messages stay (matched by Message-ID)."""
        with self._tx() as db:
            db.execute("DELETE FROM imap_uids WHERE folder = ?", (folder,))
            db.execute(
                "INSERT INTO imap_folders VALUES (?, ?, 0)"
                " ON CONFLICT (folder) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = 0",
                (folder, uidvalidity),
            )

    def known(self, kind: Kind, message_ids: list[str]) -> dict[str, int]:
        """Rows for these Message-IDs. For the inbox, mail moved to any other folder counts too:
        moved back into the inbox by another client, it keeps its email id."""
        if not message_ids:
            return {}
        marks = ",".join("?" * len(message_ids))
        where = "folder NOT IN ('sent', 'drafts')" if kind == "inbox" else "folder IN (?, 'discarded', 'notices')"
        rows = self._query(
            f"SELECT message_id, id FROM messages WHERE mailbox = ? AND {where}"  # noqa: S608
            f" AND message_id IN ({marks}) ORDER BY folder = 'inbox'",
            (self.mailbox, *(() if kind == "inbox" else (kind,)), *message_ids),
        )
        return {row[0]: int(row[1]) for row in rows}

    def store_batch(
        self,
        folder: str,
        kind: Kind,
        mapped: dict[int, int],
        new: list[tuple[int, bytes, bool, datetime | None]],
        last_uid: int,
        *,
        held: bool,
    ) -> int:
        """Map known UIDs, store new messages, advance ``last_uid``: one transaction. Returns how many were new."""
        added = 0
        with self._tx() as db:
            for uid, known_row in mapped.items():
                db.execute(SET_UID, (folder, uid, known_row))
                if kind == "inbox":  # back in the inbox (another client moved it): the same email
                    db.execute(
                        "UPDATE messages SET folder = 'inbox'"
                        " WHERE id = ? AND folder NOT IN ('inbox', 'discarded', 'notices')",
                        (known_row,),
                    )
            for uid, raw, seen, arrived in new:
                parsed = parse_email(raw)
                message_id = stable_message_id(raw, parsed.message_id)
                at = (arrived or datetime.now(UTC)).astimezone(UTC).isoformat()
                added += self._insert(
                    db, self.mailbox, kind, message_id, at, raw, parsed, unread=not seen, held=held and kind == "inbox"
                )
                found = db.execute(
                    "SELECT id FROM messages WHERE mailbox = ? AND folder IN (?, 'discarded', 'notices')"
                    " AND message_id = ?",
                    (self.mailbox, kind, message_id),
                ).fetchone()
                if found is not None:
                    db.execute(SET_UID, (folder, uid, found[0]))
            db.execute(
                "UPDATE imap_folders SET last_uid = CASE WHEN last_uid > ? THEN last_uid ELSE ? END WHERE folder = ?",
                (last_uid, last_uid, folder),
            )
        return added

    def record_sent(self, raw: bytes) -> None:
        """Our own sent message, indexed at once (threads and reply waits need it before the next sync)."""
        parsed = parse_email(raw)
        with self._tx() as db:
            self._insert(
                db,
                self.mailbox,
                "sent",
                parsed.message_id,
                datetime.now(UTC).isoformat(),
                raw,
                parsed,
                unread=False,
                held=False,
            )

    def has_sent(self, message_id: str) -> bool:
        return bool(
            self._query(
                "SELECT 1 FROM messages WHERE mailbox = ? AND folder = 'sent' AND message_id = ?",
                (self.mailbox, message_id),
            )
        )

    def uid_of(self, row: int) -> tuple[str, int] | None:
        rows = self._query("SELECT folder, uid FROM imap_uids WHERE message = ? ORDER BY uid DESC LIMIT 1", (row,))
        return (str(rows[0][0]), int(rows[0][1])) if rows else None

    def forget_uid(self, folder: str, uid: int) -> None:
        """The message left that folder on the server (moved): its old UID names nothing now."""
        with self._tx() as db:
            db.execute("DELETE FROM imap_uids WHERE folder = ? AND uid = ?", (folder, uid))

    def tracked(self, folder: str) -> dict[int, tuple[int, str]]:
        """UID -> (email row, Message-ID) of what the index believes is in this server folder."""
        rows = self._query(
            "SELECT u.uid, u.message, m.message_id FROM imap_uids u JOIN messages m ON m.id = u.message"
            " WHERE u.folder = ?",
            (folder,),
        )
        return {int(r[0]): (int(r[1]), str(r[2])) for r in rows}

    def message_id_of(self, row: int) -> str | None:
        rows = self._query("SELECT message_id FROM messages WHERE id = ? AND mailbox = ?", (row, self.mailbox))
        return str(rows[0][0]) if rows else None

    def relocate(self, row: int, where: tuple[str, int] | None, index_folder: str | None) -> None:
        """The message is now at ``where`` (server folder, UID), or nowhere we can find: the
        email keeps its id (its row); only its UID and, when known, its folder change."""
        with self._tx() as db:
            db.execute("DELETE FROM imap_uids WHERE message = ?", (row,))
            if where is not None:
                db.execute(SET_UID, (*where, row))
            if index_folder is not None:
                db.execute(
                    "UPDATE messages SET folder = ? WHERE id = ? AND folder NOT IN ('discarded', 'notices', 'drafts')",
                    (index_folder, row),
                )

    def remember_uid(self, folder: str, uid: int, row: int) -> None:
        with self._tx() as db:
            db.execute(SET_UID, (folder, uid, row))

    def apply_flags(self, folder: str, seen: dict[int, bool]) -> None:
        """The server's \\Seen flags onto the index (another mail client may have read the mail)."""
        with self._tx() as db:
            for uid, is_seen in seen.items():
                db.execute(
                    "UPDATE messages SET unread = ?"
                    " WHERE id = (SELECT message FROM imap_uids WHERE folder = ? AND uid = ?) AND unread != ?",
                    (int(not is_seen), folder, uid, int(not is_seen)),
                )

    def record_attempt(self, message_id: str, outcome: str, detail: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO smtp_attempts VALUES (?, ?, ?, ?)",
                (message_id, datetime.now(UTC).isoformat(), outcome, detail[:1000]),
            )

    def attempts(self, message_id: str) -> list[tuple[str, str]]:
        rows = self._query("SELECT outcome, detail FROM smtp_attempts WHERE message_id = ? ORDER BY at", (message_id,))
        return [(str(r[0]), str(r[1])) for r in rows]
