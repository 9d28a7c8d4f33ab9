"""PostgreSQL fixtures: one server per test session (started only if a test asks for it), a
fresh database per test, and ``database_url`` parametrised over both engines (None = SQLite).
Under CI=true a missing PostgreSQL fails these tests instead of skipping them."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.peers.postgres import Postgres, postgres_available, start_postgres

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    missing = postgres_available()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(missing + "; under CI it is required")
        pytest.skip(missing)
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> str:
    """A new empty database."""
    return postgres_server.new_database()


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Each test that takes it runs twice: on SQLite (None) and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    server: Postgres = request.getfixturevalue("postgres_server")
    return server.new_database()
