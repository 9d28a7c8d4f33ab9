"""The embedded engine: one SQLite file in the data dir (WAL, one writer at a time)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workflows.store.database import Database, IntegrityError, Params, Result, Row, Tx


class SqliteTx(Tx):
    dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, params: Params = ()) -> Result:
        try:
            cursor = self.db.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        if cursor.description is None:
            return Result([], cursor.rowcount)
        names = {column[0]: i for i, column in enumerate(cursor.description)}
        return Result([Row(values, names) for values in cursor.fetchall()], cursor.rowcount)


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: Path, *, wal: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if str(path) != ":memory:":
            # Created 0600 whatever the umask: stores hold mail, drafts and secrets.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self.path = path
        self.name = path.stem
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        if wal:  # without: one file, no -wal/-shm beside it (small stores written rarely)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteTx(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._lock:
            yield SqliteTx(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()
