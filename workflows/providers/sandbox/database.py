"""The sandbox's SQLite database: its schema, one connection shared between threads, and
transactions. The store's parts (``store.py``, ``reads.py``, ``manage.py``) build on it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workflows.providers.sandbox.index import migrate
from workflows.providers.sandbox.search import migrate_search
from workflows.trust.marks import NoticeMarks

SCHEMA = """
CREATE TABLE IF NOT EXISTS mailboxes (
    address TEXT PRIMARY KEY COLLATE NOCASE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    message_id TEXT NOT NULL,
    recipient TEXT NOT NULL COLLATE NOCASE,
    sender TEXT NOT NULL COLLATE NOCASE,
    subject TEXT NOT NULL,
    to_addrs TEXT NOT NULL,
    delivered_at TEXT NOT NULL,
    local INTEGER NOT NULL,
    PRIMARY KEY (message_id, recipient)
);
CREATE INDEX IF NOT EXISTS deliveries_recipient ON deliveries (recipient, delivered_at);
CREATE INDEX IF NOT EXISTS deliveries_sender ON deliveries (sender, delivered_at);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox TEXT NOT NULL COLLATE NOCASE,
    folder TEXT NOT NULL,
    message_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    unread INTEGER NOT NULL DEFAULT 1,
    held INTEGER NOT NULL DEFAULT 0,
    raw BLOB NOT NULL,
    UNIQUE (mailbox, folder, message_id)
);
CREATE INDEX IF NOT EXISTS messages_listing ON messages (mailbox, folder, id);
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Database:
    """Synchronous access to the sandbox database; safe to share between threads."""

    def __init__(self, path: Path, marks: NoticeMarks | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.marks = marks
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        with self._tx() as db:
            migrate(db)
            migrate_search(db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._db.execute(sql, params)
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()
