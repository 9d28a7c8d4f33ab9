"""The CLI with a person's API token (MAILGATE_API_TOKEN): decisions in that person's name only."""

from __future__ import annotations

import os
from collections.abc import Sequence

import anyio

from server.app import Mailgate
from server.deciders import decidable as decidable_by
from server.deciders import refusal
from server.errors import Forbidden
from server.identities import Person
from workflows.models import Decision, SendSummary


async def token_person(app: Mailgate) -> Person | None:
    """The person whose API token MAILGATE_API_TOKEN holds; None when it is unset."""
    token = os.environ.get("MAILGATE_API_TOKEN", "").strip()
    if not token:
        return None
    person = await anyio.to_thread.run_sync(app.identities.person_by_token, token)
    if person is None:
        raise Forbidden("MAILGATE_API_TOKEN is not a person's API token here; `mailgate people reset` makes a new one")
    return person


async def decidable(app: Mailgate, sends: Sequence[SendSummary]) -> list[SendSummary]:
    """With a person's token, only the sends that person may decide; else all of them."""
    person = await token_person(app)
    if person is None:
        return list(sends)
    return await decidable_by(app, person, sends)


async def person_decision(app: Mailgate, send_id: str, decision: Decision, named: bool) -> Decision:
    """The decision as the token's owner makes it; `--as` naming someone else is refused."""
    person = await token_person(app)
    if person is None:
        raise Forbidden("MAILGATE_API_TOKEN is empty; set it to your API token from `mailgate people add|reset`")
    if named and decision.approver.strip().lower() != person.email:
        raise Forbidden(f"--as: this token belongs to {person.email}; it cannot act as {decision.approver.strip()}")
    state = await app.sends.status(send_id)
    refused = await refusal(app, person, state.mailbox, state.requester)
    if refused is not None:
        raise Forbidden(refused)
    return decision.model_copy(update={"approver": person.email})
