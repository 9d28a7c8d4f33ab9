"""Front-door proofs inside the workflows: what a forged decision meets, and replay of proven ones."""

from __future__ import annotations

import pytest
from temporalio.worker import Replayer

from server.app import Mailgate
from tests.conftest import wait_for_status
from workflows.models import Decision
from workflows.send import SendEmailWorkflow
from workflows.temporal import data_converter
from workflows.worker import WORKFLOWS


async def submit(app: Mailgate) -> str:
    result = await app.sends.submit(mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject="s", body="b")
    return result.send_id


@pytest.mark.parametrize("how", ["signal", "update"])
async def test_a_proven_decision_replays_without_nondeterminism(app: Mailgate, how: str) -> None:
    send_id = await submit(app)
    decision = Decision(decision="approve", approver="alice", channel="test", decision_id=f"{how}-1")
    if how == "signal":
        assert await app.sends.signal_decision(send_id, decision) == "accepted"
    else:
        await app.sends.decide(send_id, decision)
    await wait_for_status(app, send_id, ["sent"])
    history = await app.client.get_workflow_handle(send_id).fetch_history()
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter())
    await replayer.replay_workflow(history)


async def test_a_forged_signal_is_refused_and_recorded_and_the_send_keeps_waiting(app: Mailgate) -> None:
    send_id = await submit(app)
    handle = app.client.get_workflow_handle_for(SendEmailWorkflow.run, send_id)
    await handle.signal(SendEmailWorkflow.decide_signal, Decision(decision="approve", approver="alice"))
    state = await handle.query(SendEmailWorkflow.state)
    for _ in range(100):
        if any(e.kind == "decision_refused" for e in state.events):
            break
        state = await handle.query(SendEmailWorkflow.state)
    assert state.status == "pending_approval" and state.decision is None
    assert [e.kind for e in state.events][-1] == "decision_refused"
    history = await handle.fetch_history()
    await Replayer(workflows=WORKFLOWS, data_converter=data_converter()).replay_workflow(history)
