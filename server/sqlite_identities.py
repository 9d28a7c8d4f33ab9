"""The SQLite engine of the identity store: one small file in the data dir (0600).

Passwords are kept as argon2id hashes and tokens as SHA-256 hashes (they are random and long,
so a fast hash is enough and lets a request find its owner by index).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.identities import (
    AGENT_TOKEN_PREFIX,
    DEFAULT_AGENT,
    PERSON_TOKEN_PREFIX,
    Agent,
    IdentityError,
    IdentityStore,
    NewAgent,
    NewPerson,
    Person,
)
from workflows.store import Database, IntegrityError, Row, Tx, migrate, open_database
from workflows.store.sqlite import SqliteDatabase

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@[^@\s.]+$")
_AGENT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_SCHEMA = """
create table if not exists people (
    email text primary key,
    name text not null default '',
    admin integer not null default 0,
    approves text not null default '[]',
    reviews text not null default '[]',
    password_hash text not null,
    token_hash text not null unique,
    created_at text not null
);
create table if not exists agents (
    name text primary key,
    mailboxes text not null default '[]',
    read_only integer not null default 0,
    token_hash text not null unique,
    created_at text not null
);
"""
# Columns added after the first release, for stores made before them.
_ADDED = {"agents": {"owner": "text not null default ''"}}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _email(value: str) -> str:
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise IdentityError(f"{value!r} is not an email address")
    return email


def _boxes(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        box = value.strip().lower()
        if "@" not in box or any(c.isspace() for c in box):
            raise IdentityError(f"{value!r} is not a mailbox address")
        if box not in out:
            out.append(box)
    return out


def _person(row: Row) -> Person:
    return Person(
        email=row["email"],
        name=row["name"],
        admin=bool(row["admin"]),
        approves=json.loads(row["approves"]),
        reviews=json.loads(row["reviews"]),
        created_at=row["created_at"],
    )


def _agent(row: Row) -> Agent:
    return Agent(
        name=row["name"],
        mailboxes=json.loads(row["mailboxes"]),
        read_only=bool(row["read_only"]),
        created_at=row["created_at"],
        owner=row["owner"],
    )


def _create(tx: Tx) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            tx.execute(statement)
    for table, added in _ADDED.items():
        if tx.dialect == "sqlite":
            have = {row["name"] for row in tx.execute(f"pragma table_info({table})")}
        else:
            have = {
                row[0]
                for row in tx.execute(
                    "select column_name from information_schema.columns"
                    " where table_schema = current_schema() and table_name = ?",
                    (table,),
                )
            }
        for column, kind in added.items():
            if column not in have:
                tx.execute(f"alter table {table} add column {column} {kind}")


class SqliteIdentities:
    """People and agents on the store interface: a small SQLite file in the data dir (every
    process sees every change), or, given a shared database, its ``identities`` schema."""

    def __init__(self, path: Path | Database, hasher: PasswordHasher | None = None) -> None:
        # A rollback journal, not WAL: one file holds everything (no -wal file beside it).
        self.db = path if isinstance(path, Database) else SqliteDatabase(path, wal=False)
        self._hasher = hasher or PasswordHasher()
        if isinstance(path, Path):
            os.chmod(path, 0o600)  # also a file an older release made more openly
        migrate(self.db, "identities", [_create])

    def _rows(self, query: str, *args: object) -> list[Row]:
        return self.db.query(query, args)

    def _write(self, query: str, *args: object) -> None:
        with self.db.transaction() as tx:
            tx.execute(query, args)

    # --- people -------------------------------------------------------------------------

    def add_person(
        self,
        email: str,
        *,
        name: str = "",
        admin: bool = False,
        approves: Sequence[str] = (),
        reviews: Sequence[str] = (),
    ) -> NewPerson:
        address = _email(email)
        password = secrets.token_urlsafe(18)
        token = PERSON_TOKEN_PREFIX + secrets.token_urlsafe(32)
        person = Person(
            email=address,
            name=name.strip(),
            admin=admin,
            approves=_boxes(approves),
            reviews=_boxes(reviews),
            created_at=_now(),
        )
        try:
            self._write(
                "insert into people values (?, ?, ?, ?, ?, ?, ?, ?)",
                person.email,
                person.name,
                int(person.admin),
                json.dumps(person.approves),
                json.dumps(person.reviews),
                self._hasher.hash(password),
                token_hash(token),
                person.created_at,
            )
        except IntegrityError:
            raise IdentityError(f"{address} already exists; `mailgate people reset` gives new secrets") from None
        return NewPerson(**person.model_dump(), password=password, api_token=token)

    def person(self, email: str) -> Person | None:
        rows = self._rows("select * from people where email = ?", email.strip().lower())
        return _person(rows[0]) if rows else None

    def _existing(self, email: str) -> Person:
        person = self.person(email)
        if person is None:
            raise IdentityError(f"no person {email!r}; `mailgate people list` shows who exists")
        return person

    def people(self) -> list[Person]:
        return [_person(row) for row in self._rows("select * from people order by email")]

    def update_person(
        self,
        email: str,
        *,
        name: str | None = None,
        admin: bool | None = None,
        approves: Sequence[str] | None = None,
        reviews: Sequence[str] | None = None,
    ) -> Person:
        person = self._existing(email)
        updated = person.model_copy(
            update={
                "name": person.name if name is None else name.strip(),
                "admin": person.admin if admin is None else admin,
                "approves": person.approves if approves is None else _boxes(approves),
                "reviews": person.reviews if reviews is None else _boxes(reviews),
            }
        )
        self._write(
            "update people set name = ?, admin = ?, approves = ?, reviews = ? where email = ?",
            updated.name,
            int(updated.admin),
            json.dumps(updated.approves),
            json.dumps(updated.reviews),
            updated.email,
        )
        return updated

    def remove_person(self, email: str) -> None:
        self._write("delete from people where email = ?", self._existing(email).email)

    def reset_person(self, email: str) -> NewPerson:
        """New password and API token; the old ones stop working at once."""
        person = self._existing(email)
        password = secrets.token_urlsafe(18)
        token = PERSON_TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._write(
            "update people set password_hash = ?, token_hash = ? where email = ?",
            self._hasher.hash(password),
            token_hash(token),
            person.email,
        )
        return NewPerson(**person.model_dump(), password=password, api_token=token)

    def person_by_token(self, token: str) -> Person | None:
        if not token.startswith(PERSON_TOKEN_PREFIX):
            return None
        rows = self._rows("select * from people where token_hash = ?", token_hash(token))
        return _person(rows[0]) if rows else None

    def check_password(self, email: str, password: str) -> Person | None:
        rows = self._rows("select * from people where email = ?", email.strip().lower())
        if not rows:
            # The same work as a real check, so timing does not tell who exists.
            with contextlib.suppress(VerificationError, InvalidHashError):
                self._hasher.verify(_dummy_hash(), password)
            return None
        try:
            self._hasher.verify(rows[0]["password_hash"], password)
        except (VerificationError, InvalidHashError):
            return None
        return _person(rows[0])

    # --- agents -------------------------------------------------------------------------

    def add_agent(
        self, name: str, *, mailboxes: Sequence[str] = (), read_only: bool = False, owner: str = ""
    ) -> NewAgent:
        clean = name.strip().lower()
        if not _AGENT_NAME.match(clean):
            raise IdentityError(f"{name!r} is not a valid agent name (lowercase letters, digits, '.', '_', '-')")
        if clean == DEFAULT_AGENT:
            raise IdentityError("'default' is the built-in agent of MAILGATE_AGENT_TOKEN; choose another name")
        if owner and self.person(owner) is None:
            raise IdentityError(f"no person {owner!r} to own the agent; `mailgate people add` first")
        token = AGENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
        agent = Agent(
            name=clean,
            mailboxes=_boxes(mailboxes),
            read_only=read_only,
            created_at=_now(),
            owner=owner.strip().lower(),
        )
        try:
            self._write(
                "insert into agents (name, mailboxes, read_only, token_hash, created_at, owner)"
                " values (?, ?, ?, ?, ?, ?)",
                agent.name,
                json.dumps(agent.mailboxes),
                int(read_only),
                token_hash(token),
                agent.created_at,
                agent.owner,
            )
        except IntegrityError:
            raise IdentityError(f"agent {clean!r} already exists; `mailgate agents rotate` gives a new token") from None
        return NewAgent(**agent.model_dump(), token=token)

    def agent(self, name: str) -> Agent | None:
        rows = self._rows("select * from agents where name = ?", name.strip().lower())
        return _agent(rows[0]) if rows else None

    def _existing_agent(self, name: str) -> Agent:
        agent = self.agent(name)
        if agent is None:
            raise IdentityError(f"no agent {name!r}; `mailgate agents list` shows which exist")
        return agent

    def agents(self) -> list[Agent]:
        return [_agent(row) for row in self._rows("select * from agents order by name")]

    def remove_agent(self, name: str) -> None:
        self._write("delete from agents where name = ?", self._existing_agent(name).name)

    def rotate_agent(self, name: str) -> NewAgent:
        agent = self._existing_agent(name)
        token = AGENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._write("update agents set token_hash = ? where name = ?", token_hash(token), agent.name)
        return NewAgent(**agent.model_dump(), token=token)

    def agent_by_token(self, token: str) -> Agent | None:
        if not token.startswith(AGENT_TOKEN_PREFIX):
            return None
        rows = self._rows("select * from agents where token_hash = ?", token_hash(token))
        return _agent(rows[0]) if rows else None

    def add_agent_mailbox(self, name: str, mailbox: str) -> Agent:
        agent = self._existing_agent(name)
        boxes = _boxes([*agent.mailboxes, mailbox])
        self._write("update agents set mailboxes = ? where name = ?", json.dumps(boxes), agent.name)
        return agent.model_copy(update={"mailboxes": boxes})


@functools.cache
def _dummy_hash() -> str:
    return PasswordHasher().hash(secrets.token_urlsafe(12))


def open_identities(data_dir: Path, database_url: str | None = None) -> IdentityStore:
    """People and agents: in the data dir, or (``database_url``) in the shared PostgreSQL."""
    path = data_dir / "identities.db"
    return SqliteIdentities(open_database(path, database_url, name="identities") if database_url else path)
