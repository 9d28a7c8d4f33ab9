"""mailgate's own state behind one small interface, on two engines.

SQLite in the data dir is the embedded default; ``MAILGATE_DATABASE_URL=postgresql://...``
puts the same tables in PostgreSQL, shared by every front door and worker. Stores write
their SQL once (``?`` placeholders, ``INSERT ... ON CONFLICT``, ``RETURNING``, which both
engines take) and ask ``db.dialect`` only where the engines truly differ (DDL, full-text).
"""

from workflows.store.database import Database, Dialect, IntegrityError, Result, Row, Tx, open_database
from workflows.store.migrations import Migration, migrate

__all__ = ["Database", "Dialect", "IntegrityError", "Migration", "Result", "Row", "Tx", "migrate", "open_database"]
