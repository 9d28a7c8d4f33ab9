"""Named values every process of a deployment must agree on (generated tokens and keys), kept
in the shared database: the first process to ask creates each one, the others read it."""

from __future__ import annotations

from collections.abc import Callable

from workflows.store.database import Database, Tx
from workflows.store.migrations import migrate


def _create(tx: Tx) -> None:
    tx.execute("CREATE TABLE IF NOT EXISTS shared_values (name TEXT PRIMARY KEY, value TEXT NOT NULL)")


class SharedValues:
    def __init__(self, db: Database) -> None:
        self.db = db
        migrate(db, "values", [_create])

    def get_or_create(self, name: str, make: Callable[[], str]) -> str:
        """The value named ``name``; ``make()`` gives it the first time, once for all processes."""
        with self.db.transaction() as tx:
            tx.execute("INSERT INTO shared_values VALUES (?, ?) ON CONFLICT DO NOTHING", (name, make()))
            row = tx.execute("SELECT value FROM shared_values WHERE name = ?", (name,)).fetchone()
        assert row is not None
        return str(row[0])

    def close(self) -> None:
        self.db.close()
