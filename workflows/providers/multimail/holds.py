"""mailgate's own holds on inbound MultiMail mail, for mailboxes in mailgate's ``gated_all`` mode.

MultiMail keeps the mail and holds it only when its own mode says so; mailgate's mode is
mailgate's to enforce. So the first time mailgate sees an inbound MultiMail email (a listing,
a read, the watcher's poll) it asks its own mode, as the sandbox and IMAP do on arrival, and
writes the answer here: ``held`` (invisible to agents until a human releases it), or ``visible``.
A release gets a sequence number, so the mailbox watcher sees released mail as new mail.

Mail MultiMail itself holds for its human (its ``gated_all``) is kept in ``waiting`` when the
watcher's cursor passes it, and reported as new when MultiMail's human lets it through.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from workflows.store import Database, Tx, migrate, open_database

State = Literal["visible", "held", "released", "discarded"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS holds (
    email_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    item TEXT NOT NULL,
    seq BIGINT,
    changed_by TEXT,
    changed_at TEXT
);
CREATE INDEX IF NOT EXISTS holds_state ON holds (state);
CREATE INDEX IF NOT EXISTS holds_seq ON holds (seq);
CREATE TABLE IF NOT EXISTS waiting (
    email_id TEXT PRIMARY KEY
)
"""


def _create(tx: Tx) -> None:
    for statement in SCHEMA.split(";"):
        tx.execute(statement)


class HoldStore:
    """One MultiMail mailbox's hold decisions (a SQLite file or a PostgreSQL schema); ``None``
    keeps them in memory (tests, one process)."""

    def __init__(self, path: Path | Database | None = None) -> None:
        self.db = path if isinstance(path, Database) else open_database(path or Path(":memory:"))
        migrate(self.db, "holds", [_create])

    def states(self, email_ids: Sequence[str]) -> dict[str, State]:
        if not email_ids:
            return {}
        marks = ",".join("?" * len(email_ids))
        rows = self.db.query(
            f"SELECT email_id, state FROM holds WHERE email_id IN ({marks})",  # noqa: S608
            tuple(email_ids),
        )
        return {str(row[0]): row[1] for row in rows}

    def record(self, items: Iterable[dict[str, Any]], state: State) -> None:
        """First sight of these emails: keep the first answer (a later mode change does not undo it)."""
        rows = [(str(item["id"]), state, json.dumps(item)) for item in items]
        with self.db.transaction() as tx:
            tx.executemany("INSERT INTO holds (email_id, state, item) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", rows)

    def held(self, limit: int) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT item FROM holds WHERE state = 'held' ORDER BY email_id DESC LIMIT ?", (limit,))
        return [json.loads(row[0]) for row in rows]

    def decide(self, email_id: str, change: Literal["release", "discard"], actor: str) -> dict[str, Any] | None:
        """Release or discard one held email; returns it, or None if it is not held here."""
        with self.db.transaction() as tx:
            row = tx.execute("SELECT item FROM holds WHERE email_id = ? AND state = 'held'", (email_id,)).fetchone()
            if row is not None:
                top = tx.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM holds").fetchone()
                assert top is not None
                tx.execute(
                    "UPDATE holds SET state = ?, seq = ?, changed_by = ?, changed_at = ? WHERE email_id = ?",
                    (
                        "released" if change == "release" else "discarded",
                        int(top[0]) if change == "release" else None,
                        actor,
                        datetime.now(UTC).isoformat(),
                        email_id,
                    ),
                )
        return json.loads(row[0]) if row is not None else None

    def released_after(self, seq: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        rows = self.db.query(
            "SELECT seq, item FROM holds WHERE state = 'released' AND seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )
        return [(int(row[0]), json.loads(row[1])) for row in rows]

    def last_release(self) -> int:
        return int(self.db.query("SELECT COALESCE(MAX(seq), 0) FROM holds")[0][0])

    def wait(self, items: Iterable[dict[str, Any]]) -> None:
        """Inbound emails MultiMail holds for its human: look at them again until it decides."""
        with self.db.transaction() as tx:
            tx.executemany(
                "INSERT INTO waiting (email_id) VALUES (?) ON CONFLICT DO NOTHING", [(str(i["id"]),) for i in items]
            )

    def waiting(self) -> list[str]:
        return [str(row[0]) for row in self.db.query("SELECT email_id FROM waiting ORDER BY email_id")]

    def done_waiting(self, email_id: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM waiting WHERE email_id = ?", (email_id,))

    def close(self) -> None:
        self.db.close()
