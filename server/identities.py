"""Who is who: people and agents, shared by every front door and worker of a machine.

A small store interface (`IdentityStore`) with one engine today, SQLite in the data dir
(0600). Passwords are kept as argon2id hashes and tokens as SHA-256 hashes (they are random
and long, so a fast hash is enough and lets a request find its owner by index). Nothing here
ever goes into a workflow: requests carry the owner's name or email, never a secret.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel

from server.errors import MailgateError

# Tokens say what they are for, so a person's token offered to /mcp is refused by its shape too.
PERSON_TOKEN_PREFIX = "mgp_"  # noqa: S105 - a prefix, not a secret
AGENT_TOKEN_PREFIX = "mga_"  # noqa: S105 - a prefix, not a secret
DEFAULT_AGENT = "default"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@[^@\s.]+$")
_AGENT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class IdentityError(MailgateError):
    """A refused change to people or agents: bad input, or a name that does not exist."""


class Person(BaseModel):
    email: str
    name: str = ""
    admin: bool = False
    approves: list[str] = []
    reviews: list[str] = []
    created_at: str

    def can_see(self, mailbox: str) -> bool:
        box = mailbox.lower()
        return self.admin or box in self.approves or box in self.reviews


class Agent(BaseModel):
    name: str
    mailboxes: list[str] = []
    # The built-in agent (MAILGATE_AGENT_TOKEN) reaches every mailbox.
    all_mailboxes: bool = False
    read_only: bool = False
    created_at: str = ""
    # The person answerable for the agent (who may hold its token): they cannot approve its sends.
    owner: str = ""

    def can_use(self, mailbox: str) -> bool:
        return self.all_mailboxes or mailbox.lower() in self.mailboxes


DEFAULT = Agent(name=DEFAULT_AGENT, all_mailboxes=True)
# Whoever holds the admin token: bootstrap and break glass, with every role.
ADMIN = Person(email="", name="admin token", admin=True, created_at="")


def may_decide(person: Person, mailbox: str, listed: Sequence[str], people: Sequence[Person]) -> bool:
    """Only a mailbox's approvers decide its sends: those its configuration lists, else the
    people who approve it here; with no approvers anywhere, admins decide."""
    box = mailbox.lower()
    approvers = {a.lower() for a in listed}
    if approvers:
        return person.email in approvers
    named = {p.email for p in people if box in p.approves}
    return person.email in named if named else person.admin


class NewPerson(Person):
    """What `people add|reset` shows once: the secrets are never stored in the clear."""

    password: str
    api_token: str


class NewAgent(Agent):
    token: str


class IdentityStore(Protocol):
    """The operations front doors need; a PostgreSQL engine implements the same."""

    def add_person(
        self,
        email: str,
        *,
        name: str = "",
        admin: bool = False,
        approves: Sequence[str] = (),
        reviews: Sequence[str] = (),
    ) -> NewPerson: ...
    def person(self, email: str) -> Person | None: ...
    def people(self) -> list[Person]: ...
    def update_person(
        self,
        email: str,
        *,
        name: str | None = None,
        admin: bool | None = None,
        approves: Sequence[str] | None = None,
        reviews: Sequence[str] | None = None,
    ) -> Person: ...
    def remove_person(self, email: str) -> None: ...
    def reset_person(self, email: str) -> NewPerson: ...
    def person_by_token(self, token: str) -> Person | None: ...
    def check_password(self, email: str, password: str) -> Person | None: ...
    def add_agent(
        self, name: str, *, mailboxes: Sequence[str] = (), read_only: bool = False, owner: str = ""
    ) -> NewAgent: ...
    def agent(self, name: str) -> Agent | None: ...
    def agents(self) -> list[Agent]: ...
    def remove_agent(self, name: str) -> None: ...
    def rotate_agent(self, name: str) -> NewAgent: ...
    def agent_by_token(self, token: str) -> Agent | None: ...
    def add_agent_mailbox(self, name: str, mailbox: str) -> Agent: ...


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


class SqliteIdentities:
    """The SQLite engine: one small file, opened per call, so every process sees every change."""

    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        self.path = path
        self._hasher = hasher or PasswordHasher()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        with self._db() as db:
            db.executescript(_SCHEMA)
            for table, added in _ADDED.items():
                have = {row["name"] for row in db.execute(f"pragma table_info({table})")}
                for column, kind in added.items():
                    if column not in have:
                        db.execute(f"alter table {table} add column {column} {kind}")

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    # --- people -------------------------------------------------------------------------

    @staticmethod
    def _person(row: sqlite3.Row) -> Person:
        return Person(
            email=row["email"],
            name=row["name"],
            admin=bool(row["admin"]),
            approves=json.loads(row["approves"]),
            reviews=json.loads(row["reviews"]),
            created_at=row["created_at"],
        )

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
            with self._db() as db:
                db.execute(
                    "insert into people values (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        person.email,
                        person.name,
                        int(person.admin),
                        json.dumps(person.approves),
                        json.dumps(person.reviews),
                        self._hasher.hash(password),
                        token_hash(token),
                        person.created_at,
                    ),
                )
        except sqlite3.IntegrityError:
            raise IdentityError(f"{address} already exists; `mailgate people reset` gives new secrets") from None
        return NewPerson(**person.model_dump(), password=password, api_token=token)

    def person(self, email: str) -> Person | None:
        with self._db() as db:
            row = db.execute("select * from people where email = ?", (email.strip().lower(),)).fetchone()
        return self._person(row) if row else None

    def _existing(self, email: str) -> Person:
        person = self.person(email)
        if person is None:
            raise IdentityError(f"no person {email!r}; `mailgate people list` shows who exists")
        return person

    def people(self) -> list[Person]:
        with self._db() as db:
            rows = db.execute("select * from people order by email").fetchall()
        return [self._person(row) for row in rows]

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
        with self._db() as db:
            db.execute(
                "update people set name = ?, admin = ?, approves = ?, reviews = ? where email = ?",
                (
                    updated.name,
                    int(updated.admin),
                    json.dumps(updated.approves),
                    json.dumps(updated.reviews),
                    updated.email,
                ),
            )
        return updated

    def remove_person(self, email: str) -> None:
        person = self._existing(email)
        with self._db() as db:
            db.execute("delete from people where email = ?", (person.email,))

    def reset_person(self, email: str) -> NewPerson:
        """New password and API token; the old ones stop working at once."""
        person = self._existing(email)
        password = secrets.token_urlsafe(18)
        token = PERSON_TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._db() as db:
            db.execute(
                "update people set password_hash = ?, token_hash = ? where email = ?",
                (self._hasher.hash(password), token_hash(token), person.email),
            )
        return NewPerson(**person.model_dump(), password=password, api_token=token)

    def person_by_token(self, token: str) -> Person | None:
        if not token.startswith(PERSON_TOKEN_PREFIX):
            return None
        with self._db() as db:
            row = db.execute("select * from people where token_hash = ?", (token_hash(token),)).fetchone()
        return self._person(row) if row else None

    def check_password(self, email: str, password: str) -> Person | None:
        with self._db() as db:
            row = db.execute("select * from people where email = ?", (email.strip().lower(),)).fetchone()
        if row is None:
            # The same work as a real check, so timing does not tell who exists.
            with contextlib.suppress(VerificationError, InvalidHashError):
                self._hasher.verify(_dummy_hash(), password)
            return None
        try:
            self._hasher.verify(row["password_hash"], password)
        except (VerificationError, InvalidHashError):
            return None
        return self._person(row)

    # --- agents -------------------------------------------------------------------------

    @staticmethod
    def _agent(row: sqlite3.Row) -> Agent:
        return Agent(
            name=row["name"],
            mailboxes=json.loads(row["mailboxes"]),
            read_only=bool(row["read_only"]),
            created_at=row["created_at"],
            owner=row["owner"],
        )

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
            with self._db() as db:
                db.execute(
                    "insert into agents (name, mailboxes, read_only, token_hash, created_at, owner)"
                    " values (?, ?, ?, ?, ?, ?)",
                    (
                        agent.name,
                        json.dumps(agent.mailboxes),
                        int(read_only),
                        token_hash(token),
                        agent.created_at,
                        agent.owner,
                    ),
                )
        except sqlite3.IntegrityError:
            raise IdentityError(f"agent {clean!r} already exists; `mailgate agents rotate` gives a new token") from None
        return NewAgent(**agent.model_dump(), token=token)

    def agent(self, name: str) -> Agent | None:
        with self._db() as db:
            row = db.execute("select * from agents where name = ?", (name.strip().lower(),)).fetchone()
        return self._agent(row) if row else None

    def _existing_agent(self, name: str) -> Agent:
        agent = self.agent(name)
        if agent is None:
            raise IdentityError(f"no agent {name!r}; `mailgate agents list` shows which exist")
        return agent

    def agents(self) -> list[Agent]:
        with self._db() as db:
            rows = db.execute("select * from agents order by name").fetchall()
        return [self._agent(row) for row in rows]

    def remove_agent(self, name: str) -> None:
        agent = self._existing_agent(name)
        with self._db() as db:
            db.execute("delete from agents where name = ?", (agent.name,))

    def rotate_agent(self, name: str) -> NewAgent:
        agent = self._existing_agent(name)
        token = AGENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._db() as db:
            db.execute("update agents set token_hash = ? where name = ?", (token_hash(token), agent.name))
        return NewAgent(**agent.model_dump(), token=token)

    def agent_by_token(self, token: str) -> Agent | None:
        if not token.startswith(AGENT_TOKEN_PREFIX):
            return None
        with self._db() as db:
            row = db.execute("select * from agents where token_hash = ?", (token_hash(token),)).fetchone()
        return self._agent(row) if row else None

    def add_agent_mailbox(self, name: str, mailbox: str) -> Agent:
        agent = self._existing_agent(name)
        boxes = _boxes([*agent.mailboxes, mailbox])
        with self._db() as db:
            db.execute("update agents set mailboxes = ? where name = ?", (json.dumps(boxes), agent.name))
        return agent.model_copy(update={"mailboxes": boxes})


@functools.cache
def _dummy_hash() -> str:
    return PasswordHasher().hash(secrets.token_urlsafe(12))


def open_identities(data_dir: Path) -> IdentityStore:
    return SqliteIdentities(data_dir / "identities.db")
