"""The CLI with a person's API token (MAILGATE_API_TOKEN): decisions in that person's name only."""

from __future__ import annotations

import os

import anyio

from server.app import Mailgate
from server.errors import Forbidden
from server.identities import may_decide
from workflows.models import Decision


async def person_decision(app: Mailgate, send_id: str, decision: Decision, named: bool) -> Decision:
    """The decision as the token's owner makes it; `--as` naming someone else is refused."""
    token = os.environ.get("MAILGATE_API_TOKEN", "").strip()
    person = await anyio.to_thread.run_sync(app.identities.person_by_token, token)
    if person is None:
        raise Forbidden("MAILGATE_API_TOKEN is not a person's API token here; `mailgate people reset` makes a new one")
    if named and decision.approver.strip().lower() != person.email:
        raise Forbidden(f"--as: this token belongs to {person.email}; it cannot act as {decision.approver.strip()}")
    state = await app.sends.status(send_id)
    listed = (await app.mailboxes.config(state.mailbox)).approvers
    if not may_decide(person, state.mailbox, listed, app.identities.people()):
        raise Forbidden(f"{person.email} is not an approver of {state.mailbox}")
    return decision.model_copy(update={"approver": person.email})
