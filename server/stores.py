"""Where mailgate's own state lives: each store is a SQLite file in the data dir, or, with
``MAILGATE_DATABASE_URL``, a schema in one PostgreSQL database that every process shares."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from server.settings import Settings, SettingsError
from workflows.ids import mailbox_key
from workflows.store import Database, open_database
from workflows.store.database import DatabaseUnavailable
from workflows.store.values import SharedValues
from workflows.trust.ledger import LocalLedger, open_ledger


def database_url(settings: Settings) -> str | None:
    return settings.database_url.get_secret_value() if settings.database_url else None


@contextmanager
def _reachable() -> Iterator[None]:
    # A database that cannot be reached is a setting to fix, said in one line (no traceback).
    try:
        yield
    except DatabaseUnavailable as exc:
        raise SettingsError(str(exc)) from None


def database(settings: Settings, path: Path, name: str) -> Database:
    """The store at ``path`` in the data dir, or schema ``name`` in the configured PostgreSQL."""
    with _reachable():
        return open_database(path, database_url(settings), name=name)


def sandbox_database(settings: Settings) -> Database:
    return database(settings, settings.data_dir / "sandbox.db", "sandbox")


def imap_database(settings: Settings, address: str) -> Database:
    """One IMAP mailbox's index (its own file, or its own schema: the same tables, kept apart)."""
    key = mailbox_key(address)
    return database(settings, settings.data_dir / "imap" / f"{key}.db", f"imap_{key}")


def multimail_database(settings: Settings, address: str) -> Database:
    """One MultiMail mailbox's hold decisions."""
    key = mailbox_key(address)
    return database(settings, settings.data_dir / "multimail" / f"{key}.db", f"multimail_{key}")


def shared_values(settings: Settings) -> SharedValues | None:
    """Generated tokens and keys in the shared database; None without one (they are files in the data dir)."""
    if settings.database_url is None:
        return None
    return SharedValues(database(settings, settings.data_dir / "values.db", "mailgate"))


def grant_database(settings: Settings) -> Database | None:
    """OAuth grants of ``auth = "oauth2"`` mailboxes: files in the data dir, unless a database is shared."""
    if settings.database_url is None:
        return None
    return database(settings, settings.data_dir / "oauth" / "grants.db", "oauth")


def ledger(settings: Settings) -> LocalLedger:
    """Delivered sends and recorded mailbox configurations (``workflows/trust/ledger.py``)."""
    with _reachable():
        return open_ledger(settings.data_dir, database_url(settings))


def database_check(db: Database) -> Callable[[], Awaitable[bool]]:
    """/readyz's check of the shared database: one round trip answers."""

    async def check() -> bool:
        try:
            rows = await asyncio.wait_for(asyncio.to_thread(db.query, "SELECT 1"), timeout=5)
        except Exception:  # any failure means not ready; the database's own logs say why
            return False
        return bool(rows)

    return check
