"""Changing a sandbox mailbox: marking read, releasing or discarding held mail, manage_email's
actions (nothing is ever deleted: trash is a folder), and the agent's drafts (folder 'drafts':
never in changes, searches or threads' listings)."""

from __future__ import annotations

from typing import Any

from workflows.mail.parsing import parse_email
from workflows.providers.base import EmailNotFound
from workflows.providers.sandbox.database import Database, now_iso
from workflows.providers.sandbox.index import SUMMARY_COLUMNS, index_values, next_value, summary
from workflows.providers.sandbox.search import HIDDEN_FOLDERS, index_text, unindex_text
from workflows.read_models import Action, EmailChange, EmailSummary, StoredEmail
from workflows.store import Tx


class Manage(Database):
    """The store's changes to stored mail and drafts."""

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
                        (*values, actor, now_iso(), row_id),
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
            stamp = (actor, now_iso(), row_id)
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
                added = db.execute("INSERT INTO labels VALUES (?, ?) ON CONFLICT DO NOTHING", (row_id, target)).rowcount
                return f"labelled {target}" if added else f"already labelled {target}"
            removed = db.execute("DELETE FROM labels WHERE message = ? AND label = ?", (row_id, target)).rowcount
            return f"label {target} removed" if removed else f"had no label {target}"

    def save_draft(self, mailbox: str, raw: bytes, draft_id: str | None = None) -> str:
        """A new draft, or (``draft_id``) a draft's new content in place; returns its id."""
        parsed = parse_email(raw)
        with self._tx() as db:
            # held=True here only keeps it out of `seq`: a draft is not mail that arrived.
            values = index_values(db, mailbox, parsed.message_id, parsed, held=True)
            del values["seq"]
            values.update(raw=raw, message_id=parsed.message_id, changed_by="agent", changed_at=now_iso())
            if draft_id is None:
                values.update(mailbox=mailbox, folder="drafts", received_at=now_iso(), unread=0, held=0)
                names = ", ".join(values)
                row = db.execute(
                    f"INSERT INTO messages ({names}) VALUES ({', '.join('?' * len(values))}) RETURNING id",  # noqa: S608
                    tuple(values.values()),
                ).fetchone()
                assert row is not None
                index_text(db, int(row[0]), values["subject"], values["body"])
                return str(row[0])
            row_id = self._draft_row(db, mailbox, draft_id)
            unindex_text(db, row_id)
            assignments = ", ".join(f"{name} = ?" for name in values)
            db.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*values.values(), row_id))  # noqa: S608
            index_text(db, row_id, values["subject"], values["body"])
            return draft_id.strip()

    def _draft_row(self, db: Tx, mailbox: str, draft_id: str) -> int:
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
        with self._read() as tx:
            row_id = self._draft_row(tx, mailbox, draft_id)
        rows = self._query(f"SELECT {SUMMARY_COLUMNS}, raw FROM messages WHERE id = ?", (row_id,))  # noqa: S608
        return StoredEmail(summary=summary(rows[0]), raw=bytes(rows[0]["raw"]))

    def delete_draft(self, mailbox: str, draft_id: str) -> None:
        """Out of the drafts (and of search); the row stays, filed as discarded."""
        with self._tx() as db:
            row_id = self._draft_row(db, mailbox, draft_id)
            unindex_text(db, row_id)
            db.execute(
                "UPDATE messages SET folder = 'discarded', changed_by = 'agent', changed_at = ? WHERE id = ?",
                (now_iso(), row_id),
            )
