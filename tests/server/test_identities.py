"""The identity store and `mailgate people|agents`, against a real SQLite file and real subprocesses."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from server.identities import IdentityError
from server.sqlite_identities import SqliteIdentities

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def store(tmp_path: Path) -> SqliteIdentities:
    return SqliteIdentities(tmp_path / "identities.db", hasher=FAST)


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAILGATE_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_secrets_are_stored_only_as_hashes_in_a_private_file(tmp_path: Path) -> None:
    identities = store(tmp_path)
    ann = identities.add_person("Ann@Example.com", approves=["Sales@mailgate.local"])
    bot = identities.add_agent("support", mailboxes=["help@mailgate.local"])
    raw = (tmp_path / "identities.db").read_bytes()
    for secret in (ann.password, ann.api_token, bot.token):
        assert secret.encode() not in raw
    assert b"$argon2id$" in raw
    assert stat.S_IMODE((tmp_path / "identities.db").stat().st_mode) == 0o600
    assert ann.email == "ann@example.com" and ann.approves == ["sales@mailgate.local"]


def test_tokens_and_passwords_find_their_owner_and_rotate(tmp_path: Path) -> None:
    identities = store(tmp_path)
    ann = identities.add_person("ann@example.com")
    bot = identities.add_agent("support", mailboxes=["help@mailgate.local"])
    assert identities.check_password("ANN@example.com", ann.password) is not None
    assert identities.check_password("ann@example.com", "wrong") is None
    assert identities.check_password("nobody@example.com", ann.password) is None
    found = identities.person_by_token(ann.api_token)
    assert found is not None and found.email == "ann@example.com"
    # A person's token is no agent's token, and the other way round.
    assert identities.agent_by_token(ann.api_token) is None
    assert identities.person_by_token(bot.token) is None
    agent = identities.agent_by_token(bot.token)
    assert agent is not None and agent.can_use("HELP@mailgate.local") and not agent.can_use("x@mailgate.local")

    reset = identities.reset_person("ann@example.com")
    assert identities.person_by_token(ann.api_token) is None
    assert identities.check_password("ann@example.com", ann.password) is None
    assert identities.check_password("ann@example.com", reset.password) is not None
    rotated = identities.rotate_agent("support")
    assert identities.agent_by_token(bot.token) is None
    assert identities.agent_by_token(rotated.token) is not None

    identities.remove_agent("support")
    identities.remove_person("ann@example.com")
    assert identities.agent_by_token(rotated.token) is None
    assert identities.person_by_token(reset.api_token) is None


def test_a_second_process_sees_every_change(tmp_path: Path) -> None:
    first, second = store(tmp_path), store(tmp_path)
    first.add_agent("support")
    second.add_agent_mailbox("support", "help@mailgate.local")
    agent = first.agent("support")
    assert agent is not None and agent.mailboxes == ["help@mailgate.local"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.add_person("not-an-email"), "not an email address"),
        (lambda s: s.add_person("a@example.com", approves=["nobox"]), "not a mailbox address"),
        (lambda s: s.add_agent("Bad Name!"), "not a valid agent name"),
        (lambda s: s.add_agent("default"), "built-in agent"),
        (lambda s: s.remove_person("ghost@example.com"), "no person"),
        (lambda s: s.rotate_agent("ghost"), "no agent"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(tmp_path: Path, call: object, message: str) -> None:
    identities = store(tmp_path)
    with pytest.raises(IdentityError, match=message):
        call(identities)  # type: ignore[operator]
    assert identities.people() == [] and identities.agents() == []


def test_cli_people_and_agents(tmp_path: Path) -> None:
    added = cli(
        tmp_path, "people", "add", "ann@example.com", "--name", "Ann", "--approves", "a@mailgate.local", "--json"
    )
    assert added.returncode == 0, added.stderr
    ann = json.loads(added.stdout)
    assert ann["email"] == "ann@example.com" and ann["password"] and ann["api_token"].startswith("mgp_")

    again = cli(tmp_path, "people", "add", "ann@example.com")
    assert again.returncode == 1 and "already exists" in again.stderr

    changed = cli(tmp_path, "people", "set", "ann@example.com", "--reviews", "b@mailgate.local", "--admin", "--json")
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout) | {"created_at": ""} == {
        "email": "ann@example.com",
        "name": "Ann",
        "admin": True,
        "approves": ["a@mailgate.local"],
        "reviews": ["b@mailgate.local"],
        "created_at": "",
    }
    listed = json.loads(cli(tmp_path, "people", "list", "--json").stdout)
    assert [p["email"] for p in listed] == ["ann@example.com"] and "password" not in listed[0]

    reset = json.loads(cli(tmp_path, "people", "reset", "ann@example.com", "--json").stdout)
    assert reset["api_token"] != ann["api_token"]

    bot = cli(tmp_path, "agents", "add", "support", "--mailbox", "help@mailgate.local", "--read-only", "--json")
    assert bot.returncode == 0, bot.stderr
    token = json.loads(bot.stdout)
    assert token["name"] == "support" and token["token"].startswith("mga_") and token["read_only"] is True
    rotated = json.loads(cli(tmp_path, "agents", "rotate", "support", "--json").stdout)
    assert rotated["token"] != token["token"]
    assert [a["name"] for a in json.loads(cli(tmp_path, "agents", "list", "--json").stdout)] == ["support"]

    assert cli(tmp_path, "agents", "remove", "support").returncode == 0
    gone = cli(tmp_path, "agents", "remove", "support")
    assert gone.returncode == 1 and "no agent" in gone.stderr
    assert cli(tmp_path, "people", "remove", "ann@example.com").returncode == 0
    assert json.loads(cli(tmp_path, "people", "list", "--json").stdout) == []


def test_an_agents_owner_is_a_person_here_and_older_stores_gain_the_column(tmp_path: Path) -> None:
    path = tmp_path / "identities.db"
    # A store made before agents had owners.
    with sqlite3.connect(path) as db:
        db.execute(
            "create table agents (name text primary key, mailboxes text not null default '[]', "
            "read_only integer not null default 0, token_hash text not null unique, created_at text not null)"
        )
        db.execute("insert into agents values ('old', '[]', 0, 'h', '2026-01-01')")
    identities = SqliteIdentities(path, hasher=FAST)
    old = identities.agent("old")
    assert old is not None and old.owner == ""
    with pytest.raises(IdentityError, match="no person"):
        identities.add_agent("helper", owner="nobody@example.com")
    identities.add_person("ann@example.com")
    made = identities.add_agent("helper", owner="Ann@Example.com")
    assert made.owner == "ann@example.com"
    assert identities.agent_by_token(made.token) is not None
    assert identities.agent_by_token(made.token).owner == "ann@example.com"  # type: ignore[union-attr]


def test_people_and_agents_take_data_dir_before_the_subcommand(tmp_path: Path) -> None:
    given, from_env = tmp_path / "given", tmp_path / "env"
    added = cli(from_env, "--data-dir", str(given), "people", "add", "ann@example.com", "--json")
    assert added.returncode == 0, added.stderr
    assert cli(from_env, "agents", "--data-dir", str(given), "add", "support").returncode == 0
    assert [p["email"] for p in json.loads(cli(given, "people", "list", "--json").stdout)] == ["ann@example.com"]
    assert [a["name"] for a in json.loads(cli(given, "agents", "list", "--json").stdout)] == ["support"]
    assert json.loads(cli(from_env, "people", "list", "--json").stdout) == []
