"""One rule for who may decide a send, asked by every front door (server/deciders.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from server.app import Mailgate
from server.deciders import refusal
from server.web.slack_webhook import SlackDecisions
from tests.support.mcp import connected
from tests.support.peers.slack_fake import BOT_TOKEN, SlackServer
from workflows.slack_client.api import SlackApi


async def test_an_agents_owner_cannot_decide_its_sends(app: Mailgate) -> None:
    tag = uuid.uuid4().hex[:8]
    box = f"own-{tag}@mailgate.local"
    await app.mailboxes.create(box, created_by="test")
    ann = app.identities.add_person(f"ann-{tag}@example.com", approves=[box])
    bob = app.identities.add_person(f"bob-{tag}@example.com", approves=[box])
    helper = app.identities.add_agent(f"helper-{tag}", mailboxes=[box], owner=ann.email)
    assert app.identities.agent(helper.name) is not None and app.identities.agent(helper.name).owner == ann.email  # type: ignore[union-attr]

    refused = await refusal(app, ann, box, helper.name)
    assert refused is not None and f"owns agent {helper.name}" in refused
    assert await refusal(app, bob, box, helper.name) is None
    assert await refusal(app, ann, box, "someone-else") is None
    assert await refusal(app, ann, box, ann.email) is not None  # a person who asked, by name


async def test_a_persons_decision_takes_one_trip_to_the_identity_store(
    app: Mailgate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every approval by a person's token asks this rule: its people and the requesting agent come
    from one thread trip (each trip waits for the event loop and the GIL), beside the mailbox's
    configuration; it was one trip each, one after the other (issue 20)."""
    tag = uuid.uuid4().hex[:8]
    box = f"trip-{tag}@mailgate.local"
    await app.mailboxes.create(box, created_by="test")
    ann = app.identities.add_person(f"ann-{tag}@example.com", approves=[box])
    owner = app.identities.add_person(f"own-{tag}@example.com", approves=[box])
    helper = app.identities.add_agent(f"helper-{tag}", mailboxes=[box], owner=owner.email)
    trips: list[Callable[..., Any]] = []
    real = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        trips.append(func)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    assert await refusal(app, ann, box, helper.name) is None
    assert len(trips) == 1
    refused = await refusal(app, owner, box, helper.name)  # the same answers as before
    assert refused is not None and f"owns agent {helper.name}" in refused
    assert len(trips) == 2


async def test_slack_follows_the_approves_of_people(app: Mailgate) -> None:
    """A mailbox with no `approvers` in its configuration: its people's --approves decide on Slack too."""
    tag = uuid.uuid4().hex[:8]
    box = f"slack-{tag}@mailgate.local"
    await app.mailboxes.create(box, created_by="test")
    ann = app.identities.add_person(f"ann-{tag}@example.com", approves=[box])
    eve = app.identities.add_person(f"eve-{tag}@example.com")
    owner = app.identities.add_person(f"own-{tag}@example.com", approves=[box])
    helper = app.identities.add_agent(f"helper-{tag}", mailboxes=[box], owner=owner.email)
    send = await app.sends.submit(mailbox=box, to=["c@example.com"], subject="S", body="b", requester=helper.name)

    slack = SlackServer().start()
    try:
        for user, person in (("UANN", ann), ("UEVE", eve), ("UOWN", owner)):
            slack.fake.add_user(user, person.email)
        decisions = SlackDecisions(app, SlackApi(BOT_TOKEN, slack.api_url))
        assert await decisions.approver_problem("UANN", send.send_id) == (None, ann.email)
        problem, _ = await decisions.approver_problem("UEVE", send.send_id)
        assert problem is not None and "not an approver" in problem
        problem, _ = await decisions.approver_problem("UOWN", send.send_id)
        assert problem is not None and f"owns agent {helper.name}" in problem
    finally:
        slack.stop()


async def test_the_built_in_agent_is_named_default(app: Mailgate) -> None:
    async with connected(app) as client:
        sent = await client.call_tool("durable_send", {"to": ["c@example.com"], "subject": "Hi", "body": "b"})
        assert sent.structured_content is not None, sent.content
    state = await app.sends.status(sent.structured_content["send_id"])
    assert state.requester == "default"
    listed = await app.sends.search(mailbox=state.mailbox, limit=50)
    assert next(s for s in listed.sends if s.send_id == state.send_id).requester == "default"
