"""The sandbox's database: its schema and transactions, on the store interface (a SQLite file
in the data dir, or a PostgreSQL schema). The store's parts (``store.py``, ``reads.py``,
``manage.py``) build on it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workflows.providers.sandbox import postgres
from workflows.providers.sandbox.index import migrate
from workflows.providers.sandbox.search import migrate_search
from workflows.store import Database as Engine
from workflows.store import Row, Tx, open_database
from workflows.store import migrate as run_migrations
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


def _create(tx: Tx) -> None:
    """The mail index as it stands (a SQLite file of an older release is brought up to it in place)."""
    if tx.dialect == "postgresql":
        postgres.create(tx)
        return
    for statement in SCHEMA.split(";"):
        if statement.strip():
            tx.execute(statement)
    migrate(tx)
    migrate_search(tx)


MIGRATIONS = [_create]


class Database:
    """Synchronous access to the sandbox database; safe to share between threads. ``path`` is
    the SQLite file, or an opened store (``workflows.store.open_database``: SQLite or PostgreSQL)."""

    def __init__(self, path: Path | Engine, marks: NoticeMarks | None = None) -> None:
        self.db = path if isinstance(path, Engine) else open_database(path)
        self.marks = marks
        run_migrations(self.db, "mail", MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[Tx]:
        with self.db.transaction() as tx:
            yield tx

    @contextmanager
    def _read(self) -> Iterator[Tx]:
        with self.db.read() as tx:
            yield tx

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.db.query(sql, params)
