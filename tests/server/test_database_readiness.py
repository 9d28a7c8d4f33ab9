"""/readyz's database check: ready while the shared database answers, failing once it does not."""

from __future__ import annotations

from pathlib import Path

import psycopg

from server.stores import database_check
from tests.support.peers.postgres import Postgres
from workflows.store import open_database


async def test_the_check_follows_the_database(tmp_path: Path, postgres_server: Postgres) -> None:
    url = postgres_server.new_database()
    db = open_database(tmp_path / "x.db", url, name="sandbox")
    check = database_check(db)
    assert await check()
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {url.rsplit('/', 1)[1]} WITH (FORCE)".encode())
    assert not await check()
    assert not await check()  # and again: a broken connection is never reused
