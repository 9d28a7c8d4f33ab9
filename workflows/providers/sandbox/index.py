"""The sandbox's mail index: parsed summary columns and threads, written once at delivery.

Listings and threads read these columns and never parse a stored message again, so a
10,000-message mailbox lists as fast as a small one. Threads are the connected components
of the Message-ID reference graph (JWZ's root sets), kept up to date as mail arrives in any
order: a message that links two threads merges them, and the old id stays an alias.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from workflows.mail.parsing import ParsedEmail, parse_email
from workflows.mail.threads import base_subject, is_reply_subject
from workflows.models import EmailAddress
from workflows.read_models import EmailSummary, Folder
from workflows.store import Row, Tx

MAX_BODY_CHARS = 200_000
SEARCH_BODY_CHARS = 20_000
THREAD_PREFIX = "thread-"

# Added to the original `messages` table; a database from before them is migrated in place.
INDEX_COLUMNS = {
    "seq": "INTEGER",  # when it became visible to agents (NULL while held or discarded)
    "thread_id": "INTEGER",
    "sender": "TEXT NOT NULL DEFAULT ''",
    "sender_name": "TEXT NOT NULL DEFAULT ''",
    "to_json": "TEXT NOT NULL DEFAULT '[]'",
    "cc_json": "TEXT NOT NULL DEFAULT '[]'",
    "subject": "TEXT NOT NULL DEFAULT ''",
    "base_subject": "TEXT NOT NULL DEFAULT ''",
    "sent_date": "TEXT",
    "snippet": "TEXT NOT NULL DEFAULT ''",
    "body": "TEXT NOT NULL DEFAULT ''",
    "search": "TEXT NOT NULL DEFAULT ''",
    "has_attachments": "INTEGER NOT NULL DEFAULT 0",
    "in_reply_to": "TEXT NOT NULL DEFAULT ''",
    "refs": "TEXT NOT NULL DEFAULT '[]'",
    "changed_by": "TEXT",
    "changed_at": "TEXT",
}

# The listing indexes, in SQL both engines take (postgres.py builds its schema with them too).
MESSAGE_INDEXES = """\
CREATE INDEX IF NOT EXISTS messages_listing ON messages (mailbox, folder, held, id);
CREATE INDEX IF NOT EXISTS messages_unread ON messages (mailbox, folder, held, unread, id);
CREATE INDEX IF NOT EXISTS messages_thread ON messages (mailbox, thread_id, id);
CREATE INDEX IF NOT EXISTS messages_seq ON messages (mailbox, seq);
CREATE INDEX IF NOT EXISTS messages_message_id ON messages (mailbox, message_id);
CREATE INDEX IF NOT EXISTS messages_subject ON messages (mailbox, base_subject, id);
"""

INDEX_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS thread_ids (
    mailbox TEXT NOT NULL COLLATE NOCASE,
    message_id TEXT NOT NULL,
    thread_id INTEGER NOT NULL,
    PRIMARY KEY (mailbox, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS thread_ids_thread ON thread_ids (thread_id);
CREATE TABLE IF NOT EXISTS thread_merges (old INTEGER PRIMARY KEY, new INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
    + MESSAGE_INDEXES
)

SUMMARY_COLUMNS = (
    "id, mailbox, folder, message_id, thread_id, sender, sender_name, to_json, cc_json, subject, sent_date,"
    " received_at, snippet, unread, has_attachments, held, in_reply_to, refs"
)


def migrate(db: Tx) -> None:
    """Add the index columns to a store made before them, and index the mail it already holds
    (SQLite files from older releases; PostgreSQL tables are created with every column)."""
    if db.dialect != "sqlite":
        return
    have = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    missing = [name for name in INDEX_COLUMNS if name not in have]
    for name in missing:
        db.execute(f"ALTER TABLE messages ADD COLUMN {name} {INDEX_COLUMNS[name]}")
    for statement in INDEX_SCHEMA.split(";"):
        # One by one: executescript would commit the caller's transaction.
        if statement.strip():
            db.execute(statement)
    if "thread_id" in missing:
        rows = db.execute("SELECT id, mailbox, message_id, raw, held FROM messages ORDER BY id").fetchall()
        for row_id, mailbox, message_id, raw, held in rows:
            parsed = parse_email(raw)
            values = index_values(db, mailbox, message_id, parsed, held=bool(held))
            assignments = ", ".join(f"{name} = ?" for name in values)
            db.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*values.values(), row_id))  # noqa: S608


def next_value(db: Tx, name: str) -> int:
    row = db.execute(
        "INSERT INTO counters VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1"
        " RETURNING value",
        (name,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def assign_thread(db: Tx, mailbox: str, message_id: str, parsed: ParsedEmail) -> int:
    """The thread of a new message: the threads of every id it names, merged; a new one if none."""
    ids = list(dict.fromkeys([message_id, *parsed.parent_ids]))
    marks = ",".join("?" * len(ids))
    found = {
        row[0]
        for row in db.execute(
            f"SELECT DISTINCT thread_id FROM thread_ids WHERE mailbox = ? AND message_id IN ({marks})",  # noqa: S608
            (mailbox, *ids),
        )
    }
    base = base_subject(parsed.subject).casefold()
    if not found and not parsed.parent_ids and base and is_reply_subject(parsed.subject):
        # A reply whose client dropped In-Reply-To and References: the subject is all there is.
        row = db.execute(
            "SELECT thread_id FROM messages WHERE mailbox = ? AND base_subject = ? AND thread_id IS NOT NULL"
            " ORDER BY id DESC LIMIT 1",
            (mailbox, base),
        ).fetchone()
        if row is not None:
            found = {row[0]}
    if not found:
        thread = next_value(db, "thread")
    else:
        thread = min(found)
        for other in found - {thread}:
            db.execute("UPDATE thread_ids SET thread_id = ? WHERE thread_id = ?", (thread, other))
            db.execute("UPDATE messages SET thread_id = ? WHERE thread_id = ?", (thread, other))
            db.execute("UPDATE thread_merges SET new = ? WHERE new = ?", (thread, other))
            db.execute(
                "INSERT INTO thread_merges VALUES (?, ?) ON CONFLICT (old) DO UPDATE SET new = excluded.new",
                (other, thread),
            )
    db.executemany(
        "INSERT INTO thread_ids VALUES (?, ?, ?)"
        " ON CONFLICT (mailbox, message_id) DO UPDATE SET thread_id = excluded.thread_id",
        [(mailbox, ident, thread) for ident in ids],
    )
    return thread


def _addresses(addresses: Sequence[EmailAddress]) -> str:
    return json.dumps([[a.name, a.address] for a in addresses], ensure_ascii=False)


def index_values(db: Tx, mailbox: str, message_id: str, parsed: ParsedEmail, *, held: bool) -> dict[str, Any]:
    """The index columns of one stored copy (assigning its thread and, if visible, its seq)."""
    sender = parsed.sender or EmailAddress(address="")
    body = parsed.text[:MAX_BODY_CHARS]
    search = " ".join([parsed.subject, sender.name, sender.address, body[:SEARCH_BODY_CHARS]]).casefold()
    return {
        "seq": None if held else next_value(db, "seq"),
        "thread_id": assign_thread(db, mailbox, message_id, parsed),
        "sender": sender.address,
        "sender_name": sender.name,
        "to_json": _addresses(parsed.to),
        "cc_json": _addresses(parsed.cc),
        "subject": parsed.subject,
        "base_subject": base_subject(parsed.subject).casefold(),
        "sent_date": parsed.date.isoformat() if parsed.date else None,
        "snippet": parsed.snippet,
        "body": body,
        "search": search,
        "has_attachments": int(bool(parsed.attachments)),
        "in_reply_to": parsed.in_reply_to,
        "refs": json.dumps(list(parsed.references)),
    }


def thread_key(thread_id: int) -> str:
    return f"{THREAD_PREFIX}{thread_id}"


def parse_thread_key(key: str) -> int | None:
    number = key.strip().removeprefix(THREAD_PREFIX)
    return int(number) if number.isascii() and number.isdigit() and len(number) < 19 else None


def resolve_thread(db: Tx, thread: int) -> int:
    row = db.execute("SELECT new FROM thread_merges WHERE old = ?", (thread,)).fetchone()
    return int(row[0]) if row else thread


def _people(raw: str) -> tuple[EmailAddress, ...]:
    return tuple(EmailAddress(name=name, address=address) for name, address in json.loads(raw))


def summary(row: Row, *, with_text: bool = False) -> EmailSummary:
    folder: Folder = row["folder"]
    sender = EmailAddress(address=row["sender"], name=row["sender_name"]) if row["sender"] else None
    return EmailSummary(
        email_id=str(row["id"]),
        mailbox=row["mailbox"],
        folder=folder,
        message_id=row["message_id"],
        thread_id=thread_key(row["thread_id"]),
        sender=sender,
        to=_people(row["to_json"]),
        cc=_people(row["cc_json"]),
        subject=row["subject"],
        date=datetime.fromisoformat(row["sent_date"]) if row["sent_date"] else None,
        received_at=datetime.fromisoformat(row["received_at"]).astimezone(UTC),
        snippet=row["snippet"],
        unread=bool(row["unread"]),
        has_attachments=bool(row["has_attachments"]),
        held=bool(row["held"]),
        in_reply_to=row["in_reply_to"],
        references=tuple(json.loads(row["refs"])),
        text=row["body"] if with_text else None,
    )
