"""The embedded mail sandbox: a SQLite mail store on this machine, and the provider over it.

Mail to a sandbox mailbox lands in its inbox; mail to any other address is captured in the
store and never leaves the machine. Each (Message-ID, recipient) pair is stored once, so a
retried delivery can never make a second copy.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from workflows.mime import build_message, envelope_recipients
from workflows.models import DeliveryReceipt, DeliveryRequest
from workflows.providers.base import EmailProvider, PermanentDeliveryError

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


class Delivery(BaseModel):
    """One delivered copy, as `mailgate sandbox list` shows it."""

    message_id: str
    sender: str
    recipient: str
    to: list[str]
    subject: str
    delivered_at: datetime
    local: bool


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SandboxStore:
    """Synchronous access to the sandbox database; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

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

    def create_mailbox(self, address: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO mailboxes VALUES (?, ?)", (address, _now()))

    def is_local(self, address: str) -> bool:
        return bool(self._query("SELECT 1 FROM mailboxes WHERE address = ?", (address,)))

    def deliver(self, raw: bytes, sender: str, recipients: Sequence[str], *, held: bool = False) -> list[str]:
        """Store one copy per recipient; returns the recipients that were new for this Message-ID."""
        msg = message_from_bytes(raw, policy=policy.default)
        message_id = str(msg.get("Message-ID", "")).strip()
        if not message_id:
            raise ValueError("a message without Message-ID cannot be stored")
        subject = str(msg.get("Subject", ""))
        to = [addr for _, addr in getaddresses([str(v) for v in msg.get_all("To", [])])]
        now = _now()
        fresh: list[str] = []
        with self._tx() as db:
            local = {row[0].lower() for row in db.execute("SELECT address FROM mailboxes")}
            for recipient in recipients:
                is_local = recipient.lower() in local
                cursor = db.execute(
                    "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (message_id, recipient, sender, subject, json.dumps(to), now, int(is_local)),
                )
                if cursor.rowcount == 0:
                    continue
                fresh.append(recipient)
                if is_local:
                    db.execute(
                        "INSERT OR IGNORE INTO messages (mailbox, folder, message_id, received_at, held, raw)"
                        " VALUES (?, 'inbox', ?, ?, ?, ?)",
                        (recipient, message_id, now, int(held), raw),
                    )
            db.execute(
                "INSERT OR IGNORE INTO messages (mailbox, folder, message_id, received_at, unread, raw)"
                " SELECT address, 'sent', ?, ?, 0, ? FROM mailboxes WHERE address = ?",
                (message_id, now, raw, sender),
            )
        return fresh

    def deliveries(self, mailbox: str | None = None, limit: int | None = None) -> list[Delivery]:
        sql = "SELECT * FROM deliveries"
        params: list[Any] = []
        if mailbox:
            sql += " WHERE recipient = ? OR sender = ?"
            params += [mailbox, mailbox]
        sql += " ORDER BY delivered_at, message_id, recipient"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        return [
            Delivery(
                message_id=row["message_id"],
                sender=row["sender"],
                recipient=row["recipient"],
                to=json.loads(row["to_addrs"]),
                subject=row["subject"],
                delivered_at=datetime.fromisoformat(row["delivered_at"]),
                local=bool(row["local"]),
            )
            for row in self._query(sql, params)
        ]


class SandboxProvider(EmailProvider):
    name = "sandbox"

    def __init__(self, store: SandboxStore) -> None:
        self.store = store

    async def send(self, request: DeliveryRequest) -> DeliveryReceipt:
        recipients = envelope_recipients(request)
        if not recipients:
            raise PermanentDeliveryError("the email has no recipients")
        raw = build_message(request).as_bytes()
        await asyncio.to_thread(self.store.deliver, raw, request.mailbox, recipients)
        return DeliveryReceipt(message_id=request.message_id, recipients=tuple(recipients))

    async def create_mailbox(self, address: str) -> None:
        await asyncio.to_thread(self.store.create_mailbox, address)
