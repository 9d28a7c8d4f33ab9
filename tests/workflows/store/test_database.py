"""The store interface on both engines: rows, transactions, and migrations that several
processes may run at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from workflows.store import Database, Tx, migrate, open_database


def _create(tx: Tx) -> None:
    tx.execute("CREATE TABLE items (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")


def _seed(tx: Tx) -> None:
    tx.execute("INSERT INTO items VALUES ('counter', 0)")


STEPS = [_create, _seed]


def test_rows_by_name_and_position_and_rollback(tmp_path: Path, database_url: str | None) -> None:
    db = open_database(tmp_path / "things.db", database_url)
    migrate(db, "things", STEPS)
    with db.transaction() as tx:
        tx.execute("INSERT INTO items VALUES (?, ?)", ("a%b?", 5))
        done = tx.execute("INSERT INTO items VALUES (?, ?) ON CONFLICT DO NOTHING", ("a%b?", 6))
        assert done.rowcount == 0
    row = db.query("SELECT name, n FROM items WHERE name = ?", ("a%b?",))[0]
    assert (row[0], row["n"]) == ("a%b?", 5)

    def undone() -> None:
        with db.transaction() as tx:
            tx.execute("UPDATE items SET n = 99")
            raise RuntimeError("undo")

    with pytest.raises(RuntimeError):
        undone()
    assert [r["n"] for r in db.query("SELECT n FROM items ORDER BY name")] == [5, 0]
    db.close()


def test_migrations_are_idempotent_and_refuse_a_newer_schema(tmp_path: Path, database_url: str | None) -> None:
    db = open_database(tmp_path / "things.db", database_url)
    assert migrate(db, "things", STEPS) == 2
    assert migrate(db, "things", STEPS) == 0

    def extra(tx: Tx) -> None:
        tx.execute("ALTER TABLE items ADD COLUMN extra TEXT")

    assert migrate(db, "things", [*STEPS, extra]) == 1
    with pytest.raises(RuntimeError, match="newer than this mailgate knows"):
        migrate(db, "things", STEPS)
    assert db.query("SELECT n FROM items")[0][0] == 0
    db.close()


def test_a_failed_step_leaves_nothing_behind(tmp_path: Path, database_url: str | None) -> None:
    db = open_database(tmp_path / "things.db", database_url)

    def broken(tx: Tx) -> None:
        tx.execute("INSERT INTO nosuchtable VALUES (1)")

    with pytest.raises(Exception, match="nosuchtable"):
        migrate(db, "things", [*STEPS, broken])
    assert migrate(db, "things", STEPS) == 2  # nothing of the failed run stayed
    db.close()


def _start_and_count(args: tuple[str, str | None]) -> int:
    path, url = args
    db = open_database(Path(path), url, name="race")
    ran = migrate(db, "things", STEPS)
    with db.transaction() as tx:
        n = tx.execute("SELECT n FROM items WHERE name = 'counter'").fetchone()
        assert n is not None
        tx.execute("UPDATE items SET n = ? WHERE name = 'counter'", (n[0] + 1,))
    db.close()
    return ran


def test_processes_starting_together_migrate_once(tmp_path: Path, database_url: str | None) -> None:
    """Six processes start on one empty database at once: the steps run once, and writers take
    turns (read-then-write increments lose nothing)."""
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        ran = pool.map(_start_and_count, [(str(tmp_path / "race.db"), database_url)] * 6)
    assert sorted(ran) == [0, 0, 0, 0, 0, 2]
    db: Database = open_database(tmp_path / "race.db", database_url, name="race")
    assert db.query("SELECT n FROM items WHERE name = 'counter'")[0][0] == 6
    db.close()


def test_a_bad_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        open_database(tmp_path / "x.db", "mysql://nope")


def test_an_unreachable_database_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    from tests.support.ports import free_port
    from workflows.store.postgres import DatabaseUnavailable

    url = f"postgresql://mailgate:hunter2-secret@127.0.0.1:{free_port()}/mailgate"
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1:\d+/mailgate") as caught:
        open_database(tmp_path / "x.db", url)
    assert "hunter2" not in str(caught.value)
