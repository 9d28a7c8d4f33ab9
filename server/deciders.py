"""Who may decide a send: the one rule every front door asks (API, CLI, dashboard, Slack).

Only a mailbox's approvers decide its sends: those its configuration lists, else the people who
approve it here; with no approvers anywhere, admins decide. On top of that, nobody decides a send
they asked for themselves: not its requester, and not the owner of the agent that requested it
(a person holding an agent's token would otherwise approve their own agent's mail).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, TypeVar

import anyio

from server.app import Mailgate
from server.identities import Agent, Person, may_decide


class Decidable(Protocol):
    """A row of a listing that waits for a human: a send, or a bulk trash request."""

    @property
    def mailbox(self) -> str: ...

    @property
    def requester(self) -> str: ...


S = TypeVar("S", bound=Decidable)


async def _person(app: Mailgate, who: Person | str) -> Person:
    if isinstance(who, Person):
        return who
    # Someone known only by email (a Slack user, say): their roles, if they are a person here.
    found = await anyio.to_thread.run_sync(app.identities.person, who)
    return found or Person(email=who.strip().lower(), created_at="")


async def refusal(app: Mailgate, who: Person | str, mailbox: str, requester: str | None = None) -> str | None:
    """Why this person may not decide this mailbox's send by ``requester``; None when they may."""
    person = await _person(app, who)

    def identities() -> tuple[list[Person], Agent | None]:
        # One trip to a thread for both (each trip waits for the event loop and the GIL).
        return app.identities.people(), app.identities.agent(requester) if requester else None

    # The mailbox's configuration (Temporal, when not cached) and the identity store at once.
    config, (people, agent) = await asyncio.gather(app.mailboxes.config(mailbox), anyio.to_thread.run_sync(identities))
    if not may_decide(person, mailbox, config.approvers, people):
        return f"{person.email} is not an approver of {mailbox}"
    return _asked_by(person.email, requester, agent)


async def requester_refusal(app: Mailgate, email: str, requester: str | None) -> str | None:
    """Why this person may not decide what ``requester`` asked for: they asked, or own the agent that did.

    Also for a one-click link, whose approver the notice chose: a mailbox may list an agent's owner."""
    agent = await anyio.to_thread.run_sync(app.identities.agent, requester) if requester else None
    return _asked_by(email, requester, agent)


def _asked_by(email: str, requester: str | None, agent: Agent | None) -> str | None:
    email = email.strip().lower()
    if requester:
        if requester.strip().lower() == email:
            return f"{email} asked for this send and cannot also decide it"
        if agent is not None and agent.owner and agent.owner == email:
            return f"{email} owns agent {agent.name}, which asked for this send, and cannot also decide it"
    return None


async def decides(app: Mailgate, who: Person | str, mailbox: str, requester: str | None = None) -> bool:
    return await refusal(app, who, mailbox, requester) is None


async def decidable(app: Mailgate, person: Person, sends: Sequence[S]) -> list[S]:
    """The sends (or trash requests) of a listing this person may decide (one check per mailbox and requester)."""
    answers: dict[tuple[str, str], bool] = {}
    kept = []
    for send in sends:
        key = (send.mailbox, send.requester)
        if key not in answers:
            answers[key] = person.can_see(send.mailbox) and await decides(app, person, *key)
        if answers[key]:
            kept.append(send)
    return kept
