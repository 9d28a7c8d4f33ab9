"""The embedded mail sandbox: a SQLite mail store on this machine, and the provider over it.

Mail to a sandbox mailbox lands in its inbox; mail to any other address is captured in the
store and never leaves the machine. Each (Message-ID, recipient) pair is stored once, so a
retried delivery can never make a second copy. Inbound mail for a ``gated_all`` mailbox is
stored held: invisible to every agent read until a human releases it. A message carrying
mailgate's notice mark (``workflows/trust/marks.py``) is stored in the ``notices`` folder, which no
agent read includes. Only mailgate's own delivery path (``SandboxProvider.send``) files a copy
in the sender's Sent folder: mail that arrives over SMTP is inbound, whatever its envelope says.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from workflows.mail.mime import build_message, envelope_recipients
from workflows.mail.parsing import parse_email
from workflows.mail.search_query import parse_query
from workflows.models import DeliveryReceipt, DeliveryRequest
from workflows.providers.base import (
    EmailNotFound,
    EmailProvider,
    InboundHooks,
    NoHooks,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from workflows.providers.sandbox.index import (
    SUMMARY_COLUMNS,
    index_values,
    migrate,
    next_value,
    parse_thread_key,
    resolve_thread,
    summary,
)
from workflows.providers.sandbox.search import (
    HIDDEN_FOLDERS,
    RANK,
    conditions,
    index_text,
    match_expression,
    migrate_search,
    unindex_text,
)
from workflows.read_models import Action, Changes, EmailChange, EmailPage, EmailQuery, EmailSummary, StoredEmail
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


class Delivery(BaseModel):
    """One delivered copy, as `mailgate sandbox list` shows it."""

    message_id: str
    sender: str
    recipient: str
    to: list[str]
    subject: str
    delivered_at: datetime
    local: bool


class UnknownHold(Exception):
    """Whether a mailbox holds inbound mail could not be found out (Temporal unreachable)."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SandboxStore:
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

    def create_mailbox(self, address: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO mailboxes VALUES (?, ?)", (address, _now()))

    def is_local(self, address: str) -> bool:
        return bool(self._query("SELECT 1 FROM mailboxes WHERE address = ?", (address,)))

    def local_among(self, addresses: Sequence[str]) -> list[str]:
        """The addresses that are sandbox mailboxes (they get an inbox copy)."""
        local = {row[0].lower() for row in self._query("SELECT address FROM mailboxes")}
        return [a for a in addresses if a.lower() in local]

    def deliver(
        self,
        raw: bytes,
        sender: str,
        recipients: Sequence[str],
        *,
        held_for: Collection[str] = (),
        keep_sent: bool = True,
    ) -> list[str]:
        """Store one copy per recipient; returns the recipients that were new for this Message-ID.

        Copies for ``held_for`` mailboxes are held for a human. ``keep_sent`` files the sender's
        Sent copy (``SandboxProvider`` asks for it only for mailgate's own deliveries). The
        summary columns and the thread are computed here, once, so that nothing reads ``raw``
        to list mail.
        """
        parsed = parse_email(raw)
        message_id = parsed.message_id
        if not message_id:
            raise ValueError("a message without a valid Message-ID cannot be stored")
        to = [a.address for a in parsed.to]
        hold = {a.lower() for a in held_for}
        now = _now()
        fresh: list[str] = []
        with self._tx() as db:
            local = {row[0].lower() for row in db.execute("SELECT address FROM mailboxes")}
            for recipient in recipients:
                is_local = recipient.lower() in local
                cursor = db.execute(
                    "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (message_id, recipient, sender, parsed.subject, json.dumps(to), now, int(is_local)),
                )
                if cursor.rowcount == 0:
                    continue
                fresh.append(recipient)
                if is_local:
                    held = recipient.lower() in hold
                    self._insert(db, recipient, "inbox", message_id, now, raw, parsed, unread=True, held=held)
            if keep_sent and sender.lower() in local:
                self._insert(db, sender, "sent", message_id, now, raw, parsed, unread=False, held=False)
        return fresh

    def _insert(
        self,
        db: sqlite3.Connection,
        mailbox: str,
        folder: str,
        message_id: str,
        now: str,
        raw: bytes,
        parsed: Any,
        *,
        unread: bool,
        held: bool,
    ) -> None:
        if self.marks is not None and self.marks.in_message(raw, parsed.text):
            # mailgate's own notice to a human, wherever it was filed: never shown to an agent.
            folder, held = "notices", True
        exists = db.execute(
            "SELECT 1 FROM messages WHERE mailbox = ? AND folder = ? AND message_id = ?", (mailbox, folder, message_id)
        ).fetchone()
        if exists:
            return
        values = {
            "mailbox": mailbox,
            "folder": folder,
            "message_id": message_id,
            "received_at": now,
            "unread": int(unread),
            "held": int(held),
            "raw": raw,
            **index_values(db, mailbox, message_id, parsed, held=held),
        }
        names = ", ".join(values)
        marks = ", ".join("?" * len(values))
        row = db.execute(f"INSERT INTO messages ({names}) VALUES ({marks})", tuple(values.values()))  # noqa: S608
        assert row.lastrowid is not None
        index_text(db, row.lastrowid, values["subject"], values["body"])

    # --- reading ---------------------------------------------------------------------------

    def list_emails(self, mailbox: str, query: EmailQuery) -> EmailPage:
        where = ["mailbox = ?"]
        params: list[Any] = [mailbox]
        search = parse_query(query.search) if query.search else None
        if search is not None:
            with self._lock:
                found, values = conditions(self._db, search, default_folder=query.folder)
            where += found
            params += values
        else:
            where.append("held = ?")
            params.append(int(query.held))
            if query.folder:
                where.append("folder = ?")
                params.append(query.folder)
            else:
                where.append(f"folder NOT IN {(*HIDDEN_FOLDERS, 'drafts')!r}")
        if query.unread_only:
            where.append("unread = 1")
        if query.since is not None:
            where.append("received_at >= ?")
            params.append(query.since.astimezone(UTC).isoformat())
        if query.sender:
            where.append("(sender LIKE ? ESCAPE '\\' OR sender_name LIKE ? ESCAPE '\\')")
            params += [_like(query.sender)] * 2
        if query.text:
            where.append("search LIKE ? ESCAPE '\\'")
            params.append(_like(query.text.casefold()))
        if query.message_id:
            where.append("message_id = ?")
            params.append(query.message_id)
        if query.cursor:
            if not (query.cursor.isascii() and query.cursor.isdigit()):
                raise ValueError("cursor: not a cursor from a previous listing")
            where.append("id > ?" if query.oldest_first else "id < ?")
            params.append(int(query.cursor))
        with self._lock:
            if query.thread_id is not None:
                number = parse_thread_key(query.thread_id)
                if number is None:
                    return EmailPage(emails=())
                where.append("thread_id = ?")
                params.append(resolve_thread(self._db, number))
            columns = SUMMARY_COLUMNS + (", body" if query.with_text else "")
            order = "ASC" if query.oldest_first else "DESC"
            cursor = self._db.execute(
                f"SELECT {columns} FROM messages WHERE {' AND '.join(where)} ORDER BY id {order} LIMIT ?",  # noqa: S608
                (*params, query.limit + 1),
            )
            cursor.row_factory = sqlite3.Row
            rows = cursor.fetchall()
        emails = tuple(summary(row, with_text=query.with_text) for row in rows[: query.limit])
        more = len(rows) > query.limit
        return EmailPage(emails=emails, next_cursor=emails[-1].email_id if more and emails else None)

    def search(self, mailbox: str, text: str, limit: int, cursor: str | None) -> EmailPage:
        """Mail matching the query syntax, best match first (newest first without words); the
        cursor is a position in that order."""
        query = parse_query(text)
        if cursor and not (cursor.isascii() and cursor.isdigit() and len(cursor) < 10):
            raise ValueError("cursor: not a cursor from a previous search")
        start = int(cursor) if cursor else 0
        with self._lock:
            where, params = conditions(self._db, query, default_folder=None, with_match=not query.ranked)
            match = match_expression(query)
            if match:
                # Rank inside the full-text index, then apply the other conditions to those rows.
                sql = (
                    f"SELECT {SUMMARY_COLUMNS} FROM messages JOIN (SELECT rowid AS hit, {RANK} AS score"  # noqa: S608
                    " FROM messages_fts WHERE messages_fts MATCH ?) ON hit = id"
                    f" WHERE mailbox = ? AND {' AND '.join(where)} ORDER BY score, id DESC LIMIT ? OFFSET ?"
                )
                args: list[Any] = [match, mailbox, *params, limit + 1, start]
            else:
                sql = (
                    f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE mailbox = ? AND {' AND '.join(where)}"  # noqa: S608
                    " ORDER BY id DESC LIMIT ? OFFSET ?"
                )
                args = [mailbox, *params, limit + 1, start]
            cursor_ = self._db.execute(sql, args)
            cursor_.row_factory = sqlite3.Row
            rows = cursor_.fetchall()
        emails = tuple(summary(row) for row in rows[:limit])
        return EmailPage(emails=emails, next_cursor=str(start + limit) if len(rows) > limit else None)

    def fetch_email(self, mailbox: str, email_id: str, *, include_held: bool = False) -> StoredEmail:
        if not (email_id.strip().isascii() and email_id.strip().isdigit()):
            raise EmailNotFound(f"{email_id!r} is not an email id of this mailbox")
        held = "" if include_held else " AND held = 0"
        rows = self._query(
            f"SELECT {SUMMARY_COLUMNS}, raw FROM messages WHERE id = ? AND mailbox = ?"  # noqa: S608
            f" AND folder NOT IN {HIDDEN_FOLDERS!r}{held}",
            (int(email_id), mailbox),
        )
        if not rows:
            raise EmailNotFound(f"no email {email_id} in mailbox {mailbox}")
        return StoredEmail(summary=summary(rows[0]), raw=bytes(rows[0]["raw"]))

    def change_email(self, mailbox: str, email_id: str, change: EmailChange, actor: str) -> EmailSummary:
        if not (email_id.strip().isascii() and email_id.strip().isdigit()):
            raise EmailNotFound(f"{email_id!r} is not an email id of this mailbox")
        row_id = int(email_id)
        with self._tx() as db:
            if change == "read":
                done = db.execute(
                    "UPDATE messages SET unread = 0 WHERE id = ? AND mailbox = ? AND held = 0"  # noqa: S608
                    f" AND folder NOT IN {HIDDEN_FOLDERS!r}",
                    (row_id, mailbox),
                ).rowcount
            else:
                held = db.execute(
                    "SELECT 1 FROM messages WHERE id = ? AND mailbox = ? AND held = 1 AND folder = 'inbox'",
                    (row_id, mailbox),
                ).fetchone()
                done = 0
                if held is not None:
                    update = "held = 0, seq = ?" if change == "release" else "held = 0, folder = 'discarded'"
                    values: tuple[Any, ...] = (next_value(db, "seq"),) if change == "release" else ()
                    done = db.execute(
                        f"UPDATE messages SET {update}, changed_by = ?, changed_at = ? WHERE id = ?",  # noqa: S608
                        (*values, actor, _now(), row_id),
                    ).rowcount
        if not done:
            what = "email" if change == "read" else "held email"
            raise EmailNotFound(f"no {what} {email_id} in mailbox {mailbox}")
        rows = self._query(f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE id = ?", (row_id,))  # noqa: S608
        return summary(rows[0])

    def manage(self, mailbox: str, email_id: str, action: Action, target: str | None, actor: str) -> str:
        """One manage_email action on one visible email; what happened, in a few words. Nothing
        is ever deleted: trash is a folder. Raises EmailNotFound (held mail included)."""
        if not (email_id.strip().isascii() and email_id.strip().isdigit() and len(email_id.strip()) < 19):
            raise EmailNotFound(f"{email_id!r} is not an email id of this mailbox")
        row_id = int(email_id)
        with self._tx() as db:
            row = db.execute(
                f"SELECT folder, unread FROM messages WHERE id = ? AND mailbox = ? AND held = 0"  # noqa: S608
                f" AND folder NOT IN {(*HIDDEN_FOLDERS, 'drafts')!r}",
                (row_id, mailbox),
            ).fetchone()
            if row is None:
                raise EmailNotFound(f"no email {email_id} in mailbox {mailbox}")
            folder, unread = row
            stamp = (actor, _now(), row_id)
            if action in ("archive", "trash", "move"):
                to = {"archive": "archive", "trash": "trash"}.get(action) or target
                assert to is not None
                if folder == to:
                    return f"already in {to}"
                db.execute("UPDATE messages SET folder = ?, changed_by = ?, changed_at = ? WHERE id = ?", (to, *stamp))
                return f"moved from {folder} to {to}"
            if action in ("mark_read", "mark_unread"):
                wanted = int(action == "mark_unread")
                if unread == wanted:
                    return "already " + ("unread" if wanted else "read")
                db.execute(
                    "UPDATE messages SET unread = ?, changed_by = ?, changed_at = ? WHERE id = ?", (wanted, *stamp)
                )
                return "marked " + ("unread" if wanted else "read")
            assert target is not None
            if action == "label":
                added = db.execute("INSERT OR IGNORE INTO labels VALUES (?, ?)", (row_id, target)).rowcount
                return f"labelled {target}" if added else f"already labelled {target}"
            removed = db.execute("DELETE FROM labels WHERE message = ? AND label = ?", (row_id, target)).rowcount
            return f"label {target} removed" if removed else f"had no label {target}"

    # --- drafts the agent made (folder 'drafts': never in changes, searches or threads' listings) ---

    def save_draft(self, mailbox: str, raw: bytes, draft_id: str | None = None) -> str:
        """A new draft, or (``draft_id``) a draft's new content in place; returns its id."""
        parsed = parse_email(raw)
        with self._tx() as db:
            # held=True here only keeps it out of `seq`: a draft is not mail that arrived.
            values = index_values(db, mailbox, parsed.message_id, parsed, held=True)
            del values["seq"]
            values.update(raw=raw, message_id=parsed.message_id, changed_by="agent", changed_at=_now())
            if draft_id is None:
                values.update(mailbox=mailbox, folder="drafts", received_at=_now(), unread=0, held=0)
                names = ", ".join(values)
                row = db.execute(
                    f"INSERT INTO messages ({names}) VALUES ({', '.join('?' * len(values))})",  # noqa: S608
                    tuple(values.values()),
                )
                assert row.lastrowid is not None
                index_text(db, row.lastrowid, values["subject"], values["body"])
                return str(row.lastrowid)
            row_id = self._draft_row(db, mailbox, draft_id)
            unindex_text(db, row_id)
            assignments = ", ".join(f"{name} = ?" for name in values)
            db.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*values.values(), row_id))  # noqa: S608
            index_text(db, row_id, values["subject"], values["body"])
            return draft_id.strip()

    def _draft_row(self, db: sqlite3.Connection, mailbox: str, draft_id: str) -> int:
        ident = draft_id.strip()
        row = None
        if ident.isascii() and ident.isdigit() and len(ident) < 19:
            row = db.execute(
                "SELECT id FROM messages WHERE id = ? AND mailbox = ? AND folder = 'drafts'", (int(ident), mailbox)
            ).fetchone()
        if row is None:
            raise EmailNotFound(f"no draft {draft_id} in mailbox {mailbox}")
        return int(row[0])

    def drafts(self, mailbox: str, limit: int = 100) -> list[EmailSummary]:
        rows = self._query(
            f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE mailbox = ? AND folder = 'drafts'"  # noqa: S608
            " ORDER BY id DESC LIMIT ?",
            (mailbox, limit),
        )
        return [summary(row) for row in rows]

    def draft(self, mailbox: str, draft_id: str) -> StoredEmail:
        with self._lock:
            row_id = self._draft_row(self._db, mailbox, draft_id)
        rows = self._query(f"SELECT {SUMMARY_COLUMNS}, raw FROM messages WHERE id = ?", (row_id,))  # noqa: S608
        return StoredEmail(summary=summary(rows[0]), raw=bytes(rows[0]["raw"]))

    def delete_draft(self, mailbox: str, draft_id: str) -> None:
        """Out of the drafts (and of search); the row stays, filed as discarded."""
        with self._tx() as db:
            row_id = self._draft_row(db, mailbox, draft_id)
            unindex_text(db, row_id)
            db.execute(
                "UPDATE messages SET folder = 'discarded', changed_by = 'agent', changed_at = ? WHERE id = ?",
                (_now(), row_id),
            )

    def changes(self, mailbox: str, cursor: str | None, limit: int = 100) -> Changes:
        if cursor is None or not (cursor.isascii() and cursor.isdigit()):
            row = self._query("SELECT value FROM counters WHERE name = 'seq'")
            return Changes(emails=(), cursor=str(row[0][0] if row else 0))
        rows = self._query(
            f"SELECT {SUMMARY_COLUMNS}, seq FROM messages WHERE mailbox = ? AND seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
            (mailbox, int(cursor), limit + 1),
        )
        kept = rows[:limit]
        return Changes(
            emails=tuple(summary(row) for row in kept),
            cursor=str(kept[-1]["seq"]) if kept else cursor,
            more=len(rows) > limit,
        )

    def find_reply(self, mailbox: str, message_id: str) -> EmailSummary | None:
        rows = self._query(
            f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE thread_id = ("  # noqa: S608
            "  SELECT thread_id FROM messages WHERE mailbox = ? AND folder = 'sent' AND message_id = ?)"
            " AND mailbox = ? AND folder = 'inbox' AND held = 0 AND message_id != ? AND id > ("
            "  SELECT id FROM messages WHERE mailbox = ? AND folder = 'sent' AND message_id = ?)"
            " ORDER BY id LIMIT 1",
            (mailbox, message_id, mailbox, message_id, mailbox, message_id),
        )
        return summary(rows[0]) if rows else None

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


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SandboxProvider(EmailProvider):
    name = "sandbox"

    def __init__(self, store: SandboxStore, hooks: InboundHooks | None = None) -> None:
        self.store = store
        self.hooks: InboundHooks = hooks or NoHooks()

    async def send(self, request: DeliveryRequest) -> DeliveryReceipt:
        recipients = envelope_recipients(request)
        if not recipients:
            raise PermanentDeliveryError("the email has no recipients")
        raw = build_message(request).as_bytes()
        try:
            # The one path that files a Sent copy. A system notice stays out of the sender's Sent
            # folder, where the agent could read it.
            await self._store(raw, request.mailbox, recipients, keep_sent=not request.system)
        except UnknownHold as err:
            raise TemporaryDeliveryError(str(err)) from err
        return DeliveryReceipt(message_id=request.message_id, recipients=tuple(recipients))

    async def receive(self, raw: bytes, sender: str, recipients: Sequence[str]) -> list[str]:
        """Store mail that arrived from outside (the SMTP listener) for its recipients; returns the
        new ones. It is inbound, never our own sent mail, whatever ``sender`` (the envelope) says.

        Raises UnknownHold when mailgate cannot tell whether a mailbox holds its inbound mail:
        then nothing is stored, and the sender should try again later.
        """
        return await self._store(raw, sender, recipients, keep_sent=False)

    async def _store(self, raw: bytes, sender: str, recipients: Sequence[str], *, keep_sent: bool) -> list[str]:
        local = await asyncio.to_thread(self.store.local_among, recipients)
        held: list[str] = []
        for mailbox in local:
            try:
                if await self.hooks.holds(mailbox):
                    held.append(mailbox)
            except Exception as exc:
                raise UnknownHold(f"cannot tell whether {mailbox} holds inbound mail: {exc}") from exc
        before = (await asyncio.to_thread(self.store.changes, "", None)).cursor
        fresh = await asyncio.to_thread(self.store.deliver, raw, sender, recipients, held_for=held, keep_sent=keep_sent)
        woken = [m for m in local if m in fresh and m not in held]
        if woken:
            await self.hooks.arrived(woken, before)
        return fresh

    async def list_emails(self, mailbox: str, query: EmailQuery) -> EmailPage:
        return await asyncio.to_thread(self.store.list_emails, mailbox, query)

    async def search(self, mailbox: str, query: str, limit: int, cursor: str | None) -> EmailPage:
        return await asyncio.to_thread(self.store.search, mailbox, query, limit, cursor)

    async def fetch_email(self, mailbox: str, email_id: str, *, include_held: bool = False) -> StoredEmail:
        return await asyncio.to_thread(self.store.fetch_email, mailbox, email_id, include_held=include_held)

    async def change_email(self, mailbox: str, email_id: str, change: EmailChange, actor: str) -> EmailSummary:
        before = (await asyncio.to_thread(self.store.changes, "", None)).cursor
        changed = await asyncio.to_thread(self.store.change_email, mailbox, email_id, change, actor)
        if change == "release":
            await self.hooks.arrived([changed.mailbox], before)
        return changed

    async def changes(self, mailbox: str, cursor: str | None, limit: int = 100) -> Changes:
        return await asyncio.to_thread(self.store.changes, mailbox, cursor, limit)

    async def manage(self, mailbox: str, email_id: str, action: Action, target: str | None, actor: str) -> str:
        return await asyncio.to_thread(self.store.manage, mailbox, email_id, action, target, actor)

    async def save_draft(self, mailbox: str, raw: bytes, draft_id: str | None = None) -> str:
        return await asyncio.to_thread(self.store.save_draft, mailbox, raw, draft_id)

    async def drafts(self, mailbox: str, limit: int = 100) -> list[EmailSummary]:
        return await asyncio.to_thread(self.store.drafts, mailbox, limit)

    async def draft(self, mailbox: str, draft_id: str) -> StoredEmail:
        return await asyncio.to_thread(self.store.draft, mailbox, draft_id)

    async def delete_draft(self, mailbox: str, draft_id: str) -> None:
        await asyncio.to_thread(self.store.delete_draft, mailbox, draft_id)

    async def find_reply(self, mailbox: str, message_id: str) -> EmailSummary | None:
        return await asyncio.to_thread(self.store.find_reply, mailbox, message_id)

    async def create_mailbox(self, address: str) -> None:
        await asyncio.to_thread(self.store.create_mailbox, address)


class StoredMessage(BaseModel):
    """One message in a sandbox mailbox's folder, as the dashboard's sandbox viewer shows it."""

    id: int
    mailbox: str
    folder: str
    message_id: str
    received_at: datetime
    held: bool
    raw: bytes


def _stored(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        mailbox=row["mailbox"],
        folder=row["folder"],
        message_id=row["message_id"],
        received_at=datetime.fromisoformat(row["received_at"]),
        held=bool(row["held"]),
        raw=row["raw"],
    )


def stored_messages(store: SandboxStore, mailbox: str | None = None, limit: int = 500) -> list[StoredMessage]:
    """The newest messages of one sandbox mailbox (or of all), newest first."""
    sql = "SELECT id, mailbox, folder, message_id, received_at, held, raw FROM messages"
    params: list[Any] = []
    if mailbox:
        sql += " WHERE mailbox = ?"
        params.append(mailbox)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [_stored(row) for row in store._query(sql, params)]


def stored_message(store: SandboxStore, message_row: int) -> StoredMessage | None:
    rows = store._query(
        "SELECT id, mailbox, folder, message_id, received_at, held, raw FROM messages WHERE id = ?", (message_row,)
    )
    return _stored(rows[0]) if rows else None


INDEX_LISTING = (
    "id, mailbox, folder, message_id, received_at, held, sender, sender_name, to_json, subject, in_reply_to, refs"
)


def message_index(store: SandboxStore, mailbox: str | None = None, limit: int = 500) -> list[sqlite3.Row]:
    """The index columns (never the raw bytes) of the newest messages of one mailbox (or of all), newest first."""
    sql = f"SELECT {INDEX_LISTING} FROM messages"  # noqa: S608
    params: list[Any] = []
    if mailbox:
        sql += " WHERE mailbox = ?"
        params.append(mailbox)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return store._query(sql, params)


def thread_index(
    store: SandboxStore, mailbox: str, message_ids: Collection[str], limit: int = 500
) -> list[sqlite3.Row]:
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
