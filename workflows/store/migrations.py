"""Schema migrations: numbered steps per store, run on start, once, by whichever process comes first.

Each store keeps its version in ``schema_versions``. All steps not yet applied run in one
transaction under the store's writer lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL an advisory
lock), so processes that start together apply each step exactly once and the others find it
done; a step that fails rolls back whole and the next start tries again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from workflows.store.database import Database, Tx

Migration = Callable[[Tx], None]

VERSIONS = "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"


def migrate(db: Database, component: str, steps: Sequence[Migration]) -> int:
    """Bring ``component``'s tables up to ``len(steps)``; returns how many steps ran here."""
    with db.transaction() as tx:
        tx.execute(VERSIONS)
        row = tx.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
        version = int(row[0]) if row else 0
        if version > len(steps):
            raise RuntimeError(
                f"the {component} store is at schema version {version}, newer than this mailgate knows"
                f" ({len(steps)}): upgrade this process"
            )
        for step in steps[version:]:
            step(tx)
        if version < len(steps):
            tx.execute(
                "INSERT INTO schema_versions VALUES (?, ?)"
                " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, len(steps)),
            )
        return len(steps) - version
