"""Signed-out dashboard sessions in the shared database (``MAILGATE_DATABASE_URL``), so a cookie
revoked through one front door is refused by every other; without a database they stay in the
data dir's ``sessions.db`` (``RevokedSessions``)."""

from __future__ import annotations

import threading
import time

from server.settings import Settings
from server.stores import database
from workflows.store import Database, Tx, migrate

REVOKED = "CREATE TABLE IF NOT EXISTS revoked (id TEXT PRIMARY KEY, until BIGINT NOT NULL)"


def _create(tx: Tx) -> None:
    tx.execute(REVOKED)


class SharedRevokedSessions:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._db: Database | None = None
        self._lock = threading.Lock()

    def _database(self) -> Database:
        # Opened at first use: building the app must not need the database to be up yet.
        with self._lock:
            if self._db is None:
                db = database(self._settings, self._settings.data_dir / "sessions.db", "sessions")
                migrate(db, "sessions", [_create])
                self._db = db
            return self._db

    def revoke(self, session_id: str, until: int) -> None:
        with self._database().transaction() as tx:
            tx.execute("DELETE FROM revoked WHERE until < ?", (int(time.time()),))
            tx.execute(
                "INSERT INTO revoked (id, until) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET until = excluded.until",
                (session_id, until),
            )

    def is_revoked(self, session_id: str) -> bool:
        return bool(self._database().query("SELECT 1 FROM revoked WHERE id = ?", (session_id,)))
