"""The store interface: a database, its transactions and rows, and how one is opened."""

from __future__ import annotations

import abc
import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal

Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any]
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class IntegrityError(Exception):
    """A constraint refused the write (a duplicate key), the same on both engines."""


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL cannot be reached or refuses the login; the message names where, never the password.

    Defined here, not beside the engine: psycopg (about 12 MB of a process) loads only when a
    PostgreSQL URL is set, while every process catches this."""


class Row(tuple[Any, ...]):
    """A result row: by position, like a tuple, or by column name."""

    names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row.names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.names)


class Result:
    """What one statement gave: its rows (if any) and how many rows it changed."""

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Row]:
        return self.rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)


class Tx(abc.ABC):
    """One open transaction. SQL uses ``?`` placeholders on both engines."""

    dialect: Dialect

    @abc.abstractmethod
    def execute(self, sql: str, params: Params = ()) -> Result: ...

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        for params in rows:
            self.execute(sql, params)


class Database(abc.ABC):
    """A store's database, safe to share between threads.

    ``transaction()`` serialises writers (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a
    transaction-level advisory lock named after the store), so a store's read-check-write
    steps behave the same on both engines.
    """

    dialect: Dialect
    name: str

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Tx]: ...

    @abc.abstractmethod
    def read(self) -> AbstractContextManager[Tx]:
        """A transaction for reads only (no writer lock)."""

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        with self.read() as tx:
            return tx.execute(sql, params).fetchall()

    @abc.abstractmethod
    def close(self) -> None: ...

    @property
    def like(self) -> str:
        """The case-insensitive LIKE of this engine (SQLite's LIKE already folds ASCII case)."""
        return "ILIKE" if self.dialect == "postgresql" else "LIKE"


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))


def open_database(path: Path, url: str | None = None, *, name: str | None = None) -> Database:
    """The store at ``path`` (a SQLite file), or, with a PostgreSQL ``url``, the schema ``name``
    (default: the file's stem) in that database. Several stores share one PostgreSQL database,
    each in its own schema, as each has its own file in the data dir."""
    if url:
        if not is_postgres_url(url):
            raise ValueError("MAILGATE_DATABASE_URL: give a postgresql://user:password@host/db URL")
        from workflows.store.postgres import PostgresDatabase

        schema = (name or path.stem).lower()
        if not _NAME.match(schema):
            raise ValueError(f"not a usable schema name: {schema!r}")
        return PostgresDatabase(url, schema)
    from workflows.store.sqlite import SqliteDatabase

    return SqliteDatabase(path)
