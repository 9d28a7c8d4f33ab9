"""What the dashboard's sandbox viewer and thread view read from the store: whole messages and
index columns, newest first."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from workflows.providers.sandbox.store import SandboxStore
from workflows.store import Row


class StoredMessage(BaseModel):
    """One message in a sandbox mailbox's folder, as the dashboard's sandbox viewer shows it."""

    id: int
    mailbox: str
    folder: str
    message_id: str
    received_at: datetime
    held: bool
    raw: bytes


def _stored(row: Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        mailbox=row["mailbox"],
        folder=row["folder"],
        message_id=row["message_id"],
        received_at=datetime.fromisoformat(row["received_at"]),
        held=bool(row["held"]),
        raw=bytes(row["raw"]),
    )


def _newest(store: SandboxStore, columns: str, mailbox: str | None, limit: int) -> list[Row]:
    sql = f"SELECT {columns} FROM messages"  # noqa: S608
    params: list[Any] = []
    if mailbox:
        sql += " WHERE mailbox = ?"
        params.append(mailbox)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return store._query(sql, params)


STORED_COLUMNS = "id, mailbox, folder, message_id, received_at, held, raw"


def stored_messages(store: SandboxStore, mailbox: str | None = None, limit: int = 500) -> list[StoredMessage]:
    """The newest messages of one sandbox mailbox (or of all), newest first."""
    return [_stored(row) for row in _newest(store, STORED_COLUMNS, mailbox, limit)]


def stored_message(store: SandboxStore, message_row: int) -> StoredMessage | None:
    rows = store._query(f"SELECT {STORED_COLUMNS} FROM messages WHERE id = ?", (message_row,))  # noqa: S608
    return _stored(rows[0]) if rows else None


INDEX_LISTING = (
    "id, mailbox, folder, message_id, received_at, held, sender, sender_name, to_json, subject, in_reply_to, refs"
)


def message_index(store: SandboxStore, mailbox: str | None = None, limit: int = 500) -> list[Row]:
    """The index columns (never the raw bytes) of the newest messages of one mailbox (or of all), newest first."""
    return _newest(store, INDEX_LISTING, mailbox, limit)


def thread_index(store: SandboxStore, mailbox: str, message_ids: Collection[str], limit: int = 500) -> list[Row]:
    """The index columns of every message of `mailbox` in a thread that names one of `message_ids`, oldest first."""
    ids = list(message_ids)
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    return store._query(
        f"SELECT {INDEX_LISTING} FROM messages WHERE mailbox = ? AND thread_id IN ("  # noqa: S608
        f"  SELECT thread_id FROM thread_ids WHERE mailbox = ? AND message_id IN ({marks}))"
        " ORDER BY received_at, id LIMIT ?",
        (mailbox, mailbox, *ids, limit),
    )
