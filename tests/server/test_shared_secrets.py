"""With MAILGATE_DATABASE_URL, processes started with empty data dirs agree on every generated
token and key (they live in the shared database); without it they are files in the data dir."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from server.credentials import load_secrets
from server.settings import Settings


def _secrets(args: tuple[str, str]) -> tuple[str, str, bytes]:
    data_dir, url = args
    found = load_secrets(Settings(data_dir=Path(data_dir), database_url=SecretStr(url)))
    return found.agent_token, found.admin_token, found.secret_key


def test_empty_data_dirs_agree_through_the_shared_database(tmp_path: Path, postgres_url: str) -> None:
    dirs = [(str(tmp_path / f"node{n}"), postgres_url) for n in range(4)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        found = pool.map(_secrets, dirs)
    assert len(set(found)) == 1
    agent, admin, key = found[0]
    assert len({agent, admin, key.decode()}) == 3
    assert not any((tmp_path / "node0" / name).exists() for name in ("agent.token", "admin.token", "secret.key"))


def test_a_set_value_wins_and_the_data_dir_is_used_without_a_database(tmp_path: Path, postgres_url: str) -> None:
    chosen = "k" * 40
    shared = load_secrets(Settings(data_dir=tmp_path / "a", database_url=SecretStr(postgres_url)))
    mine = load_secrets(
        Settings(data_dir=tmp_path / "b", database_url=SecretStr(postgres_url), secret_key=SecretStr(chosen))
    )
    assert mine.secret_key == chosen.encode() and mine.agent_token == shared.agent_token
    local = load_secrets(Settings(data_dir=tmp_path / "c"))
    assert local.agent_token != shared.agent_token
    assert (tmp_path / "c" / "agent.token").read_text().strip() == local.agent_token


def test_a_database_url_that_is_not_postgresql_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="postgresql://"):
        Settings(data_dir=tmp_path, database_url=SecretStr("sqlite:///x.db"))
