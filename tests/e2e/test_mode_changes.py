"""A mailbox's mode changed while agents send, against a real `mailgate serve`.

The front door keeps what it read of a mailbox for a second. A human's change made elsewhere
(the CLI, another front door: both record it before they return) counts from the very next
call; a tightening made in Temporal alone may reach the front door only later, and then the
delivery's own check holds the send. Nothing goes out that the mailbox's mode forbids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest
from mcp import Client

from server.app import Mailgate
from server.cli.command import open_app
from server.settings import Settings
from tests.support.serve import Serve
from tests.support.temporal_access import attacker_client
from tests.support.wait import eventually
from workflows.ids import mailbox_workflow_id
from workflows.mailbox import MailboxWorkflow
from workflows.models import ModeChange, OversightMode, SendState
from workflows.send import SendEmailWorkflow

pytestmark = pytest.mark.e2e
STALE_TRIES = 3


@pytest.fixture
async def door(module_serve: Serve) -> AsyncIterator[Mailgate]:
    """The front door the CLI opens (`server/cli/command.py`), in this process: the CLI's own
    code without its Python start, so its change lands well within the serve's cache second."""
    app = await open_app(Settings(data_dir=module_serve.data_dir))
    yield app
    await app.providers.aclose()


async def send(agent: Client, mailbox: str, subject: str) -> dict[str, Any]:
    sent = await agent.call_tool(
        "durable_send", {"mailbox": mailbox, "to": ["bob@example.com"], "subject": subject, "body": "b"}
    )
    assert not sent.is_error and sent.structured_content is not None, sent.content
    result: dict[str, Any] = sent.structured_content
    return result


async def test_a_humans_change_made_elsewhere_counts_from_the_next_call(module_serve: Serve, door: Mailgate) -> None:
    box = "elsewhere@mailgate.local"
    await door.mailboxes.create(box, created_by="alice")
    async with module_serve.mcp() as agent:
        first = await send(agent, box, "first")  # the front door has just read the mailbox
        assert first["status"] == "pending_approval", first
        await door.mailboxes.set_mode(box, "autonomous", actor="alice", role="human")
        second = await send(agent, box, "second")
        # The old front door went by its cached gated_send for up to a second after the CLI returned.
        assert (second["oversight_mode"], second["status"]) == ("autonomous", "sending"), second
        # Out before the next change (a send still on its way when the mailbox turns read_only is blocked).
        await eventually(lambda: sent_subjects(module_serve, box) == ["second"])
        await door.mailboxes.set_mode(box, "read_only", actor="alice", role="human")
        third = await agent.call_tool(
            "durable_send", {"mailbox": box, "to": ["bob@example.com"], "subject": "third", "body": "b"}
        )
        # Refused at once, with the reason, instead of accepted and then blocked at delivery.
        assert third.is_error and "read_only" in str(third.content), third.content
    assert sent_subjects(module_serve, box) == ["second"]


def sent_subjects(serve: Serve, box: str) -> list[str]:
    return sorted({d.subject for d in serve.deliveries(box)})


async def status_of(serve: Serve, send_id: str) -> str:
    temporal = await attacker_client(serve)
    state: SendState = await temporal.get_workflow_handle(send_id).query(SendEmailWorkflow.state)
    return state.status


@pytest.mark.parametrize(("mode", "held_as"), [("gated_all", "pending_approval"), ("read_only", "blocked")])
async def test_a_tightening_the_front_door_has_not_seen_yet_sends_nothing(
    module_serve: Serve, door: Mailgate, mode: OversightMode, held_as: str
) -> None:
    # An operator tightens the mailbox straight in Temporal (no proof is needed to tighten), just
    # after the front door read it as autonomous, and the agent sends at once: the front door
    # still says autonomous and starts the send; the delivery's admission must hold it.
    box = f"stale-{mode.replace('_', '-')}@mailgate.local"
    await door.mailboxes.create(box, created_by="alice")
    operator = (await attacker_client(module_serve)).get_workflow_handle_for(
        MailboxWorkflow.run, mailbox_workflow_id(box)
    )
    held: list[str] = []
    async with module_serve.mcp() as agent:
        for attempt in range(STALE_TRIES):
            await door.mailboxes.set_mode(box, "autonomous", actor="alice", role="human")
            seen = await agent.call_tool("get_mailbox", {"mailbox": box})  # the front door reads it now
            assert seen.structured_content is not None and seen.structured_content["mode"] == "autonomous"
            await operator.execute_update(MailboxWorkflow.set_mode, ModeChange(mode=mode, actor="ops", role="human"))
            sent = await agent.call_tool(
                "durable_send",
                {"mailbox": box, "to": ["bob@example.com"], "subject": f"try {attempt}", "body": "b"},
            )
            if sent.is_error:  # the front door saw the tightening already (this machine was slow)
                assert mode == "read_only" and "read_only" in str(sent.content), sent.content
                continue
            result = sent.structured_content or {}
            send_id = str(result["send_id"])
            await eventually(partial(status_is, module_serve, send_id, held_as), timeout=60, interval=0.2)
            if result["oversight_mode"] == "autonomous":
                held.append(send_id)
                break
    assert held, f"the front door saw the tightening at once in {STALE_TRIES} tries: the stale path was not tried"
    assert sent_subjects(module_serve, box) == []


async def status_is(serve: Serve, send_id: str, status: str) -> bool:
    return await status_of(serve, send_id) == status
