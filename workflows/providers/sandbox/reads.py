"""Reading a sandbox mailbox: listings, searches, one email, new mail since a cursor, replies,
and the delivery log (`mailgate sandbox list`). Held mail and hidden folders stay out unless asked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from workflows.mail.search_query import parse_query
from workflows.providers.base import EmailNotFound
from workflows.providers.sandbox import postgres
from workflows.providers.sandbox.database import Database
from workflows.providers.sandbox.index import SUMMARY_COLUMNS, parse_thread_key, resolve_thread, summary
from workflows.providers.sandbox.search import (
    HIDDEN_FOLDERS,
    RANK,
    conditions,
    match_expression,
    refresh_statistics,
)
from workflows.read_models import Changes, EmailPage, EmailQuery, EmailSummary, StoredEmail


class Delivery(BaseModel):
    """One delivered copy, as `mailgate sandbox list` shows it."""

    message_id: str
    sender: str
    recipient: str
    to: list[str]
    subject: str
    delivered_at: datetime
    local: bool


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Reads(Database):
    """The store's reads."""

    def list_emails(self, mailbox: str, query: EmailQuery) -> EmailPage:
        where = ["mailbox = ?"]
        params: list[Any] = [mailbox]
        search = parse_query(query.search) if query.search else None
        if search is not None:
            refresh_statistics(self.db)
            with self._read() as tx:
                found, values = conditions(tx, search, default_folder=query.folder)
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
            like = self.db.like
            where.append(f"(sender {like} ? ESCAPE '\\' OR sender_name {like} ? ESCAPE '\\')")
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
        with self._read() as tx:
            if query.thread_id is not None:
                number = parse_thread_key(query.thread_id)
                if number is None:
                    return EmailPage(emails=())
                where.append("thread_id = ?")
                params.append(resolve_thread(tx, number))
            columns = SUMMARY_COLUMNS + (", body" if query.with_text else "")
            order = "ASC" if query.oldest_first else "DESC"
            rows = tx.execute(
                f"SELECT {columns} FROM messages WHERE {' AND '.join(where)} ORDER BY id {order} LIMIT ?",  # noqa: S608
                (*params, query.limit + 1),
            ).fetchall()
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
        refresh_statistics(self.db)
        with self._read() as tx:
            where, params = conditions(tx, query, default_folder=None, with_match=not query.ranked)
            match = match_expression(query, tx.dialect)
            if match and tx.dialect == "postgresql":
                sql = (
                    f"SELECT {SUMMARY_COLUMNS} FROM messages JOIN (SELECT id AS hit, {postgres.RANK} AS score"  # noqa: S608
                    " FROM message_words WHERE words @@ ?::tsquery) AS hits ON hit = id"
                    f" WHERE mailbox = ? AND {' AND '.join(where)} ORDER BY score DESC, id DESC LIMIT ? OFFSET ?"
                )
                args: list[Any] = [match, match, mailbox, *params, limit + 1, start]
            elif match:
                # Rank inside the full-text index, then apply the other conditions to those rows.
                sql = (
                    f"SELECT {SUMMARY_COLUMNS} FROM messages JOIN (SELECT rowid AS hit, {RANK} AS score"  # noqa: S608
                    " FROM messages_fts WHERE messages_fts MATCH ?) ON hit = id"
                    f" WHERE mailbox = ? AND {' AND '.join(where)} ORDER BY score, id DESC LIMIT ? OFFSET ?"
                )
                args = [match, mailbox, *params, limit + 1, start]
            else:
                sql = (
                    f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE mailbox = ? AND {' AND '.join(where)}"  # noqa: S608
                    " ORDER BY id DESC LIMIT ? OFFSET ?"
                )
                args = [mailbox, *params, limit + 1, start]
            rows = tx.execute(sql, args).fetchall()
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
