"""Who is who: people and agents, shared by every front door and worker of a machine.

The models and the small store interface (`IdentityStore`) every front door uses; the one
engine today is SQLite in the data dir (server/sqlite_identities.py). Nothing here ever goes
into a workflow: requests carry the owner's name or email, never a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel

from server.errors import MailgateError

# Tokens say what they are for, so a person's token offered to /mcp is refused by its shape too.
PERSON_TOKEN_PREFIX = "mgp_"  # noqa: S105 - a prefix, not a secret
AGENT_TOKEN_PREFIX = "mga_"  # noqa: S105 - a prefix, not a secret
DEFAULT_AGENT = "default"


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
