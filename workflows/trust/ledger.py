"""What mailgate keeps outside Temporal, so that Temporal access alone cannot repeat or loosen.

Anything that reaches Temporal can start a workflow again under a finished one's id, or end a
mailbox's workflow and start a forged one. Two records that only mailgate's own processes
write close those doors:

- delivered sends: the delivery activity claims a send here *before* it hands the email to a
  provider, for the run of the workflow that does it. A retry of that run may go on (the
  provider's own de-duplication and the heartbeated receipt take over); any other run under the
  same send id (a re-run with the recorded request and decision, a reset) delivers nothing.
  Approved bulk trash requests are claimed the same way, apart (a trash is no send for rate limits).
- mailbox configurations: every configuration a front door sets (create, set-mode, configure,
  an upgrade code) and the mode each upgrade request asks for. Front doors and admission check
  what the mailbox workflow says against it and go with the stricter of the two.

A small interface (``LocalLedger``) on mailgate's store (``workflows/store``): SQLite in the data
dir, or with ``MAILGATE_DATABASE_URL`` PostgreSQL, shared by every front door and worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, get_args

from workflows.models import Admission, MailboxConfig, OversightMode, strictness
from workflows.store import Database, Tx, migrate, open_database

LEDGER_DB = "ledger.db"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS deliveries (send_id TEXT PRIMARY KEY, run_id TEXT NOT NULL,"
    " mailbox TEXT NOT NULL, claimed_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS deliveries_by_mailbox ON deliveries (mailbox, claimed_at)",
    "CREATE TABLE IF NOT EXISTS mailboxes (address TEXT PRIMARY KEY, config TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS upgrades (request_id TEXT PRIMARY KEY, mailbox TEXT NOT NULL, mode TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class LocalLedger(Protocol):
    def claim_delivery(self, send_id: str, run_id: str, mailbox: str, at: datetime) -> str | None:
        """Claim a send for this run before handing it over: None when this run holds the claim
        (now or from an earlier attempt), else why it may not be delivered again."""
        ...

    def delivery_problem(self, send_id: str, run_id: str) -> str | None:
        """Why this run may not deliver this send (another run claimed it), without claiming."""
        ...

    def claim_trash(self, request_id: str, run_id: str, mailbox: str, at: datetime) -> str | None:
        """Claim a bulk trash request for this run before moving anything: None when this run
        holds the claim (now or from an earlier attempt), else why it may not trash again."""
        ...

    def deliveries_since(self, mailbox: str, since: datetime, excluding: str) -> list[datetime]:
        """When the mailbox's sends were claimed for delivery since ``since`` (for rate limits)."""
        ...

    def mailbox_config(self, address: str) -> MailboxConfig | None: ...

    def record_config(self, config: MailboxConfig) -> None: ...

    def record_upgrade(self, request_id: str, mailbox: str, mode: OversightMode) -> None: ...

    def upgrade_mode(self, request_id: str) -> OversightMode | None: ...

    def take_upgrade(self, request_id: str) -> OversightMode | None:
        """The recorded mode of an upgrade request, forgotten in the same step: a code works once."""
        ...

    def adopt(self, configs: Iterable[MailboxConfig]) -> list[str]:
        """Once per ledger (its first start beside mailboxes made by an older mailgate): record the
        configurations as they stand for mailboxes without a record; the addresses adopted."""
        ...


def _refused(send_id: str, claimed_at: str) -> str:
    return (
        f"send {send_id} was handed to its provider at {claimed_at} by another run of its workflow; "
        "a run started again under its id delivers nothing"
    )


def _trash_refused(request_id: str, claimed_at: str) -> str:
    return (
        f"trash request {request_id} was carried out at {claimed_at} by another run of its workflow; "
        "a run started again under its id trashes nothing"
    )


def _create_trash_claims(tx: Tx) -> None:
    claimed = 'claimed_at TEXT COLLATE "C"' if tx.dialect == "postgresql" else "claimed_at TEXT"
    tx.execute(
        "CREATE TABLE IF NOT EXISTS trash_claims (request_id TEXT PRIMARY KEY, run_id TEXT NOT NULL,"
        f" mailbox TEXT NOT NULL, {claimed} NOT NULL)"
    )


def _create(tx: Tx) -> None:
    for statement in _SCHEMA:
        if tx.dialect == "postgresql":
            # Timestamps are compared as ISO text: byte order, whatever the database's locale.
            statement = statement.replace("claimed_at TEXT", 'claimed_at TEXT COLLATE "C"')
        tx.execute(statement)


class StoreLedger:
    """The ledger on the store interface: SQLite in the data dir, or PostgreSQL shared by every
    front door and worker of a deployment (``MAILGATE_DATABASE_URL``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        migrate(db, "ledger", [_create, _create_trash_claims])

    def claim_delivery(self, send_id: str, run_id: str, mailbox: str, at: datetime) -> str | None:
        with self.db.transaction() as tx:
            # Under the store's writer lock, so two runs racing cannot both hold the claim.
            tx.execute(
                "INSERT INTO deliveries (send_id, run_id, mailbox, claimed_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (send_id, run_id, mailbox.lower(), at.isoformat()),
            )
            row = tx.execute("SELECT run_id, claimed_at FROM deliveries WHERE send_id = ?", (send_id,)).fetchone()
        assert row is not None
        return None if row[0] == run_id else _refused(send_id, row[1])

    def delivery_problem(self, send_id: str, run_id: str) -> str | None:
        rows = self.db.query("SELECT run_id, claimed_at FROM deliveries WHERE send_id = ?", (send_id,))
        return None if not rows or rows[0][0] == run_id else _refused(send_id, rows[0][1])

    def claim_trash(self, request_id: str, run_id: str, mailbox: str, at: datetime) -> str | None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO trash_claims (request_id, run_id, mailbox, claimed_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (request_id, run_id, mailbox.lower(), at.isoformat()),
            )
            row = tx.execute("SELECT run_id, claimed_at FROM trash_claims WHERE request_id = ?", (request_id,))
            found = row.fetchone()
        assert found is not None
        return None if found[0] == run_id else _trash_refused(request_id, found[1])

    def deliveries_since(self, mailbox: str, since: datetime, excluding: str) -> list[datetime]:
        rows = self.db.query(
            "SELECT claimed_at FROM deliveries WHERE mailbox = ? AND claimed_at > ? AND send_id != ?",
            (mailbox.lower(), since.isoformat(), excluding),
        )
        return [datetime.fromisoformat(row[0]) for row in rows]

    def mailbox_config(self, address: str) -> MailboxConfig | None:
        rows = self.db.query("SELECT config FROM mailboxes WHERE address = ?", (address.lower(),))
        return MailboxConfig.model_validate_json(rows[0][0]) if rows else None

    def record_config(self, config: MailboxConfig) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO mailboxes (address, config) VALUES (?, ?)"
                " ON CONFLICT (address) DO UPDATE SET config = excluded.config",
                (config.address.lower(), config.model_dump_json()),
            )

    def record_upgrade(self, request_id: str, mailbox: str, mode: OversightMode) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO upgrades (request_id, mailbox, mode) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (request_id, mailbox.lower(), mode),
            )

    def upgrade_mode(self, request_id: str) -> OversightMode | None:
        rows = self.db.query("SELECT mode FROM upgrades WHERE request_id = ?", (request_id,))
        modes: tuple[OversightMode, ...] = get_args(OversightMode)
        return next((m for m in modes if rows and rows[0][0] == m), None)

    def take_upgrade(self, request_id: str) -> OversightMode | None:
        with self.db.transaction() as tx:
            row = tx.execute("SELECT mode FROM upgrades WHERE request_id = ?", (request_id,)).fetchone()
            tx.execute("DELETE FROM upgrades WHERE request_id = ?", (request_id,))
        modes: tuple[OversightMode, ...] = get_args(OversightMode)
        return next((m for m in modes if row is not None and row[0] == m), None)

    def adopt(self, configs: Iterable[MailboxConfig]) -> list[str]:
        adopted: list[str] = []
        with self.db.transaction() as tx:
            if tx.execute("SELECT 1 FROM meta WHERE key = 'adopted'").fetchone() is None:
                for config in configs:
                    known = tx.execute("SELECT 1 FROM mailboxes WHERE address = ?", (config.address.lower(),))
                    if known.fetchone() is None:
                        tx.execute(
                            "INSERT INTO mailboxes (address, config) VALUES (?, ?)",
                            (config.address.lower(), config.model_dump_json()),
                        )
                        adopted.append(config.address)
                tx.execute("INSERT INTO meta (key, value) VALUES ('adopted', ?)", (datetime.now(UTC).isoformat(),))
        return adopted


def open_ledger(data_dir: Path, database_url: str | None = None) -> LocalLedger:
    """The ledger in the data dir, or (``database_url``) in the shared PostgreSQL database."""
    return StoreLedger(open_database(data_dir / LEDGER_DB, database_url, name="ledger"))


# --- checking a mailbox's configuration against the record -------------------------------------


def stricter_mode(a: OversightMode, b: OversightMode) -> OversightMode:
    return a if strictness(a) <= strictness(b) else b


def verified_config(recorded: MailboxConfig | None, live: MailboxConfig) -> tuple[MailboxConfig, str | None]:
    """The configuration to act on, and what is wrong with the mailbox workflow's when it is not
    the one mailgate's front doors recorded: then the record, at the stricter of the two modes;
    without any record (a mailbox no front door made), the workflow's, gated at least."""
    if recorded is None:
        mode = stricter_mode(live.mode, "gated_send")
        problem = f"mailbox {live.address} has no configuration recorded by mailgate's front doors"
        return live.model_copy(update={"mode": mode}), problem
    if recorded == live:
        return live, None
    mode = stricter_mode(recorded.mode, live.mode)
    problem = f"the configuration of {live.address} in Temporal is not the one mailgate's front doors set"
    return recorded.model_copy(update={"mode": mode}), problem


_OUTCOMES = {"ok": 0, "needs_approval": 1, "blocked": 2}


def stricter_admission(theirs: Admission, ours: Admission, problem: str | None) -> Admission:
    """The mailbox workflow's answer checked against ours (from the recorded configuration)."""
    if _OUTCOMES[ours.outcome] > _OUTCOMES[theirs.outcome]:
        return ours.model_copy(update={"reason": f"{ours.reason} ({problem})" if problem else ours.reason})
    if _OUTCOMES[theirs.outcome] > _OUTCOMES[ours.outcome]:
        return theirs
    return theirs.model_copy(update={"mode": stricter_mode(theirs.mode, ours.mode)})
