"""wait_for_reply refuses a new wait when the mailbox's watcher already carries its most."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.service import RPCError

from server.app import Mailgate
from server.errors import Conflict
from tests.support.inbox import sent_send
from workflows import ids
from workflows.reply_wait import ReplyWaitWorkflow
from workflows.temporal import MAILBOX


async def running_waits(app: Mailgate) -> int:
    key = ids.mailbox_key(app.settings.default_mailbox)
    query = f"WorkflowType = 'ReplyWaitWorkflow' AND ExecutionStatus = 'Running' AND {MAILBOX.name} = '{key}'"
    return (await app.client.count_workflows(query)).count


async def test_a_new_reply_wait_past_the_cap_is_refused_and_a_running_one_still_attaches(
    app: Mailgate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("server.reply_waits.MAX_WATCHES", 2)
    first, second, third = [await sent_send(app, f"Proposal {i}") for i in range(3)]
    waiting = [asyncio.create_task(app.reply_waits.wait_for_reply(s, 60)) for s in (first, second)]
    try:
        deadline = asyncio.get_running_loop().time() + 15
        while await running_waits(app) < 2:
            assert asyncio.get_running_loop().time() < deadline, "the waits did not show in visibility"
            await asyncio.sleep(0.1)
        with pytest.raises(Conflict, match="already has 2 reply waits running"):
            await app.reply_waits.wait_for_reply(third, 1)
        with pytest.raises(RPCError, match="not found"):  # nothing was started for it
            await app.client.get_workflow_handle(ids.reply_wait_id(third)).describe()
        again = await app.reply_waits.wait_for_reply(first, 0.02)  # the wait already running: attached
        assert again.status == "timeout"
    finally:
        for task in waiting:
            task.cancel()
        for send_id in (first, second):
            await app.client.get_workflow_handle_for(ReplyWaitWorkflow.run, ids.reply_wait_id(send_id)).terminate()
