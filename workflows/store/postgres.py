"""The shared engine: PostgreSQL (psycopg 3), one schema per store.

Connections are pooled per database object; each transaction takes
``pg_advisory_xact_lock`` on the store's name before writing, so writers to one store take
turns as they do on SQLite (whose ``BEGIN IMMEDIATE`` gives the same guarantee) — across
every process that shares the database.
"""

from __future__ import annotations

import queue
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
import psycopg.errors

from workflows.store.database import Database, DatabaseUnavailable, IntegrityError, Params, Result, Row, Tx

__all__ = ["DatabaseUnavailable", "PostgresDatabase"]

POOL_SIZE = 4


def lock_key(name: str) -> int:
    """A stable 63-bit advisory lock key for a name (the same in every process)."""
    return zlib.crc32(f"mailgate:{name}".encode()) | (0x4D47 << 32)


def _sql(sql: str) -> str:
    # Stores write `?`; psycopg takes `%s` (and a literal % must be doubled).
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresTx(Tx):
    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Params = ()) -> Result:
        try:
            cursor = self.conn.execute(_sql(sql).encode(), tuple(params))
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        if cursor.description is None:
            return Result([], cursor.rowcount)
        names = {column.name: i for i, column in enumerate(cursor.description)}
        return Result([Row(values, names) for values in cursor.fetchall()], cursor.rowcount)


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str, schema: str) -> None:
        self.url = url
        self.name = schema
        self._idle: queue.LifoQueue[psycopg.Connection[tuple[object, ...]]] = queue.LifoQueue()
        self._closed = False
        with self._connection() as conn, conn.transaction():
            # Two processes creating one schema at once: the lock makes the second wait, then see it.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("schemas"),))
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        try:
            return psycopg.connect(self.url, autocommit=True, options=f"-c search_path={self.name}", connect_timeout=10)
        except psycopg.OperationalError as exc:
            where = urlsplit(self.url)
            place = f"{where.hostname or 'localhost'}:{where.port or 5432}{where.path}"
            raise DatabaseUnavailable(f"MAILGATE_DATABASE_URL: cannot use PostgreSQL at {place}: {exc}") from None

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        except BaseException:
            conn.close()  # its state is unknown: never reuse it
            raise
        if conn.closed or self._closed or self._idle.qsize() >= POOL_SIZE:
            conn.close()
        else:
            self._idle.put(conn)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(self.name),))
            yield PostgresTx(conn)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._connection() as conn, conn.transaction():
            yield PostgresTx(conn)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
