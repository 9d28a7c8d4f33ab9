"""Attacks on the merged trust boundaries that the first round of tests did not try, each against
one real `mailgate serve`: an agent holding only its token, and a process that reaches Temporal."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from mcp import MCPError
from temporalio.client import Client, WorkflowUpdateFailedError

from tests.support.serve import Serve
from workflows import ids
from workflows.mailbox import MailboxWorkflow
from workflows.models import ModeChange
from workflows.temporal import data_converter

pytestmark = pytest.mark.e2e
MAILBOX = "agent@mailgate.local"


@pytest.fixture(scope="module")
def stack(module_serve: Serve) -> Serve:
    return module_serve


async def test_no_mailbox_takes_the_address_notices_come_from(stack: Serve) -> None:
    """Humans reply to notices, and a reply quotes the approve links while mail clients strip the
    signature that carries the notice mark: a mailbox at the notices' From would hand them to an agent."""
    async with stack.mcp() as agent:
        for address in ("mailgate@mailgate.local", "MailGate@MAILGATE.local"):
            made = await agent.call_tool("create_mailbox", {"address": address})
            assert made.is_error, made.content
            assert "From address of mailgate's notices" in str(made.content)
        listed = await agent.call_tool("list_mailboxes", {})
        assert "mailgate@mailgate.local" not in str(listed.structured_content).lower()
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        response = await http.post(
            "/api/mailboxes",
            json={"address": "mailgate@mailgate.local"},
            headers={"Authorization": f"Bearer {stack.token('admin')}"},
        )
    assert response.status_code == 400, response.text


async def test_a_loosening_replayed_after_a_forced_continue_as_new_is_refused(stack: Serve) -> None:
    """Anyone who reaches Temporal can read a human's loosening (with its proof) from history and
    force the mailbox workflow to continue as new with a burst of harmless updates; the replay
    must not find a fresh memory of used proofs."""
    assert stack.cli("mailbox", "set-mode", MAILBOX, "autonomous").returncode == 0
    assert stack.cli("mailbox", "set-mode", MAILBOX, "gated_send").returncode == 0

    temporal = await Client.connect(f"127.0.0.1:{stack.temporal_port}", data_converter=data_converter())
    box_id = ids.mailbox_workflow_id(MAILBOX)
    box = temporal.get_workflow_handle_for(MailboxWorkflow.run, box_id)
    loosenings = []
    async for event in box.fetch_history_events():
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            accepted = event.workflow_execution_update_accepted_event_attributes.accepted_request.input
            if accepted.name == "set_mode":
                [change] = await temporal.data_converter.decode(accepted.args.payloads, [ModeChange])
                if change.mode == "autonomous":
                    loosenings.append(change)
    [loosen] = loosenings
    assert loosen.proof

    with pytest.raises(WorkflowUpdateFailedError):
        await box.execute_update(MailboxWorkflow.set_mode, loosen)

    first_run = (await box.describe()).run_id
    harmless = ModeChange(mode="gated_send", actor="mallory", role="human")
    deadline = asyncio.get_running_loop().time() + 120
    while (await temporal.get_workflow_handle(box_id).describe()).run_id == first_run:
        assert asyncio.get_running_loop().time() < deadline, "the mailbox never continued as new"
        await asyncio.gather(*(box.execute_update(MailboxWorkflow.set_mode, harmless) for _ in range(8)))

    box = temporal.get_workflow_handle_for(MailboxWorkflow.run, box_id)
    with pytest.raises(WorkflowUpdateFailedError):
        await box.execute_update(MailboxWorkflow.set_mode, loosen)
    assert (await box.query(MailboxWorkflow.describe)).config.mode == "gated_send"
    # A human's own loosening still works afterwards.
    assert stack.cli("mailbox", "set-mode", MAILBOX, "monitored").returncode == 0
    assert (await box.query(MailboxWorkflow.describe)).config.mode == "monitored"
    assert stack.cli("mailbox", "set-mode", MAILBOX, "gated_send").returncode == 0


async def test_a_resource_uri_cannot_forge_lines_or_escapes_in_the_servers_log(stack: Serve) -> None:
    """The agent picks resource URIs; a failed read is logged. A newline or a terminal escape in
    the URI must not reach the operator's log raw (a forged line, a recoloured terminal)."""
    forged = "ERROR mailgate: approved by alice"
    answers: list[str] = []
    async with stack.mcp() as agent:
        for uri in (
            f"mailgate://mailboxes/{MAILBOX}/emails/1\x1b[2K\r\n{forged}",
            f"mailgate://mailboxes/{MAILBOX}/threads/t%0a{forged.replace(' ', '%20')}%1b[2K",
        ):
            with pytest.raises(MCPError) as refused:
                await agent.read_resource(uri)
            answers.append(str(refused.value))
    log = (stack.data_dir / "serve.log").read_bytes()
    assert b"\x1b" not in log
    assert not any(line.startswith(forged.encode()) for line in log.splitlines())
    assert all("in mailbox" in answer or "of this mailbox" in answer for answer in answers), (
        answers
    )  # mailgate's own refusal
