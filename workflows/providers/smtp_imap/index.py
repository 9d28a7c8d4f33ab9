"""The local index of one IMAP mailbox: what was synced, in the sandbox's SQLite mail index.

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from workflows.mail.parsing import parse_email
from workflows.providers.sandbox.store import SandboxStore
from workflows.trust.marks import NoticeMarks

Kind = Literal["inbox", "sent"]

IMAP_SCHEMA = """
CREATE TABLE IF NOT EXISTS imap_folders (
    folder TEXT PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS imap_uids (
    folder TEXT NOT NULL,
    uid INTEGER NOT NULL,
    message INTEGER NOT NULL,
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


def stable_message_id(raw: bytes, message_id: str) -> str:
    """The Message-ID, or for mail without one an id made from its bytes (the same on every resync)."""
    return message_id or f"<{hashlib.sha256(raw).hexdigest()[:32]}@no-message-id.mailgate.invalid>"


class ImapIndex(SandboxStore):
    """The sandbox's store (messages, index columns, threads, ``seq``) plus UID bookkeeping."""

    def __init__(self, path: Path, mailbox: str, marks: NoticeMarks | None = None) -> None:
        super().__init__(path, marks)
        self.mailbox = mailbox
        self._db.executescript(IMAP_SCHEMA)

    def folder_state(self, folder: str) -> tuple[int, int] | None:
        rows = self._query("SELECT uidvalidity, last_uid FROM imap_folders WHERE folder = ?", (folder,))
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    def reset_folder(self, folder: str, uidvalidity: int) -> None:
        """A new UIDVALIDITY: the old UIDs mean nothing now; the messages stay (matched by Message-ID)."""
        with self._tx() as db:
            db.execute("DELETE FROM imap_uids WHERE folder = ?", (folder,))
            db.execute("INSERT OR REPLACE INTO imap_folders VALUES (?, ?, 0)", (folder, uidvalidity))

    def known(self, kind: Kind, message_ids: list[str]) -> dict[str, int]:
        if not message_ids:
            return {}
        marks = ",".join("?" * len(message_ids))
        rows = self._query(
            f"SELECT message_id, id FROM messages WHERE mailbox = ? AND folder IN (?, 'discarded', 'notices')"  # noqa: S608
            f" AND message_id IN ({marks})",
            (self.mailbox, kind, *message_ids),
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
            for uid, row in mapped.items():
                db.execute("INSERT OR REPLACE INTO imap_uids VALUES (?, ?, ?)", (folder, uid, row))
            for uid, raw, seen, arrived in new:
                parsed = parse_email(raw)
                message_id = stable_message_id(raw, parsed.message_id)
                at = (arrived or datetime.now(UTC)).astimezone(UTC).isoformat()
                before = db.total_changes
                self._insert(
                    db, self.mailbox, kind, message_id, at, raw, parsed, unread=not seen, held=held and kind == "inbox"
                )
                added += int(db.total_changes > before)  # _insert writes nothing for a Message-ID it has
                row = db.execute(
                    "SELECT id FROM messages WHERE mailbox = ? AND folder IN (?, 'discarded', 'notices')"
                    " AND message_id = ?",
                    (self.mailbox, kind, message_id),
                ).fetchone()
                if row is not None:
                    db.execute("INSERT OR REPLACE INTO imap_uids VALUES (?, ?, ?)", (folder, uid, row[0]))
            db.execute("UPDATE imap_folders SET last_uid = MAX(last_uid, ?) WHERE folder = ?", (last_uid, folder))
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

    def remember_uid(self, folder: str, uid: int, row: int) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO imap_uids VALUES (?, ?, ?)", (folder, uid, row))

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
