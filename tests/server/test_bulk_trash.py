"""A bulk trash in a gated mailbox waits for a human, durably, then is carried out once:
approved or rejected from the API, the dashboard and the CLI (never the agent's tools), with
forged requests and approvals straight through Temporal refused. Sandbox and Dovecot."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError

from server.app import Mailgate
from tests.server import test_real_providers
from tests.server.test_manage import _ids
from tests.support.app import ADMIN_TOKEN
from tests.support.histories import keep_history
from tests.support.mcp import connected
from tests.support.peers.dovecot import Dovecot
from tests.support.peers.fixtures import IMAP_USER, dovecot, imap_append, inbound, smtp_peer
from tests.support.serve import Serve
from tests.support.web import serve_web
from workflows.activities.trash import job_problem
from workflows.models import Decision
from workflows.trash_approval import BulkTrashWorkflow, TrashJob, TrashRequest, TrashState
from workflows.trust.proofs import proof_key, sign_decision

imap_app = test_real_providers.imap_app
__all__ = ["dovecot", "imap_app", "smtp_peer"]  # fixtures


async def _ask(app: Mailgate, ids: list[str]) -> dict[str, Any]:
    async with connected(app) as client:
        answer = await client.call_tool(
            "manage_email", {"mailbox": app.settings.default_mailbox, "email_ids": ids, "action": "trash"}
        )
    assert not answer.is_error, answer.content
    content: dict[str, Any] | None = answer.structured_content
    assert content is not None
    return content


async def _trashed(app: Mailgate) -> set[str]:
    return {e.email_id for e in (await app.inbox.search(app.settings.default_mailbox, "in:trash", limit=100)).emails}


async def test_a_bulk_trash_waits_for_a_human_then_is_carried_out_once(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.set_mode(mailbox, "gated_send", actor="ops", role="human")
    ids = await _ids(app, 12, subject="Bulk")
    asked = await _ask(app, ids)
    request_id = str(asked["approval_id"])
    assert asked["approval_status"] == "pending_approval" and asked["changed"] == 0
    assert request_id.startswith("trash-")
    assert await _trashed(app) == set()
    # Asking again (an agent retrying) finds the same request; nothing new waits.
    again = await _ask(app, list(reversed(ids)))
    assert again["approval_id"] == request_id
    assert [t.request_id for t in await app.trash.pending(mailbox)] == [request_id]

    async with serve_web(app) as web:
        # The agent's own token cannot decide it.
        refused = await web.agent.post(f"/api/approvals/{request_id}/approve", json={"approver": "mallory"})
        assert refused.status_code in (401, 403)
        listed = (await web.admin.get("/api/approvals")).json()
        assert [t["request_id"] for t in listed["trash_requests"]] == [request_id]
        assert listed["trash_requests"][0]["count"] == 12
        # The one who asked (the built-in agent, "default") may not approve it.
        own = await web.admin.post(f"/api/approvals/{request_id}/approve", json={"approver": "default"})
        assert own.status_code == 409 and "may not decide" in own.text
        assert (await app.trash.status(request_id)).status == "pending_approval"
        approved = await web.admin.post(f"/api/approvals/{request_id}/approve", json={"approver": "olga"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "trashed"
        twice = await web.admin.post(f"/api/approvals/{request_id}/approve", json={"approver": "olga"})
        assert twice.status_code == 409
        shown = (await web.admin.get(f"/api/sends/{request_id}")).json()
        assert shown["decision"]["approver"] == "olga" and shown["decision"]["channel"] == "api (admin token)"

    assert await _trashed(app) == set(ids)
    # The agent asking again learns the outcome per id.
    done = await _ask(app, ids)
    assert done["approval_status"] == "trashed" and done["changed"] == 12
    assert all(r["ok"] for r in done["results"])
    audit = [e for e in (await app.mailboxes.state(mailbox)).audit if e.kind == "email_trash"]
    assert len(audit) == 1 and f"approved by olga, {request_id}" in audit[0].detail
    await keep_history(app, request_id, "trash-approved")


async def test_forged_approvals_and_requests_through_temporal_trash_nothing(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    ids = await _ids(app, 11, subject="Forge")
    [other] = await _ids(app, 1, subject="Bystander")
    await app.mailboxes.set_mode(mailbox, "gated_all", actor="ops", role="human")  # after: it holds new mail
    request_id = str((await _ask(app, ids))["approval_id"])
    handle = app.client.get_workflow_handle_for(BulkTrashWorkflow.run, request_id)
    bare = Decision(decision="approve", approver="mallory", channel="temporal")
    wrong_key = sign_decision(b"k" * 32, request_id, bare, datetime.now(UTC))
    # A real front door's proof, but made for another id (a send): bound to what it was made for.
    elsewhere = sign_decision(proof_key(app.secrets.secret_key), "send-aaaaaaaaaaaaaaaaaaaa", bare, datetime.now(UTC))
    for forged in (bare, wrong_key, elsewhere):
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(BulkTrashWorkflow.decide, forged)
    state = await app.trash.status(request_id)
    assert state.status == "pending_approval"
    assert [e.kind for e in state.events].count("decision_refused") == 3
    assert await _trashed(app) == set()

    # A request started straight in Temporal: without a proof, with the real request's proof
    # (anyone can read it in history) moved onto other ids, or the real request under another id.
    real = await _started_with(app, request_id)
    no_proof = real.model_copy(update={"request_id": "trash-cccccccccccccccccccc", "proof": None})
    moved = real.model_copy(update={"request_id": "trash-dddddddddddddddddddd", "email_ids": (other,)})
    same = real  # started again under an id of the intruder's choosing
    for workflow_id, forged_request in (
        ("trash-cccccccccccccccccccc", no_proof),
        ("trash-dddddddddddddddddddd", moved),
        ("trash-eeeeeeeeeeeeeeeeeeee", same),
    ):
        result: TrashState = await app.client.execute_workflow(
            BulkTrashWorkflow.run, forged_request, id=workflow_id, task_queue=app.settings.task_queue
        )
        assert result.status == "blocked" and "no valid proof" in result.reason, result
    await keep_history(app, "trash-dddddddddddddddddddd", "trash-forged-request")
    # And the activity itself checks again: a job whose approval no front door made does nothing.
    key = proof_key(app.secrets.secret_key)
    problem = job_problem(key, TrashJob(request=real, decision=bare), request_id)
    assert problem is not None and problem.startswith("the approval") and "no valid proof" in problem
    real_decision = sign_decision(key, request_id, bare.model_copy(update={"approver": "olga"}), datetime.now(UTC))
    assert job_problem(key, TrashJob(request=real, decision=real_decision), request_id) is None
    # ... and the same approval replayed for the real request run under another workflow id.
    assert job_problem(key, TrashJob(request=real, decision=real_decision), "trash-eeeeeeeeeeeeeeeeeeee")
    assert await _trashed(app) == set()

    # A human rejects it on the dashboard; the agent sees the reason, and nothing moves.
    async with serve_web(app) as web, httpx.AsyncClient(base_url=web.url) as browser:
        page = await browser.get("/signin")
        csrf = _csrf(page.text)
        signed_in = await browser.post("/signin", data={"csrf": csrf, "name": "Olga", "token": ADMIN_TOKEN})
        assert signed_in.status_code == 303
        listed = await browser.get("/trash")
        assert request_id in listed.text
        shown = await browser.get(f"/trash/{request_id}")
        assert "Forge 0" in shown.text and "Reject" in shown.text
        rejected = await browser.post(
            f"/trash/{request_id}/reject", data={"csrf": _csrf(shown.text), "reason": "keep them"}
        )
        assert rejected.status_code == 303
    answer = await _ask(app, ids)
    assert answer["approval_status"] == "rejected" and answer["changed"] == 0
    assert "keep them" in str(answer["results"])
    assert await _trashed(app) == set()
    await keep_history(app, request_id, "trash-forged-decisions-then-rejected")


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def _started_with(app: Mailgate, request_id: str) -> TrashRequest:
    """The request as Temporal's history holds it: what anyone who reaches Temporal can read."""
    history = await app.client.get_workflow_handle(request_id).fetch_history()
    payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
    [request] = await app.client.data_converter.decode(payloads, [TrashRequest])
    assert isinstance(request, TrashRequest) and request.proof
    return request


async def test_a_bulk_trash_on_dovecot_moves_every_email_once_approved(imap_app: Mailgate, dovecot: Dovecot) -> None:
    app = imap_app
    box = test_real_providers.IMAP_BOX
    await app.mailboxes.set_mode(box, "gated_send", actor="ops", role="human")
    for n in range(1, 13):
        imap_append(dovecot, "INBOX", inbound(n, subject="Old"))
    await app.providers.for_mailbox(box).sync()  # type: ignore[attr-defined]
    ids = [e.email_id for e in (await app.inbox.search(box, "old", limit=100)).emails]
    assert len(ids) == 12
    done = await app.manager.manage(box, ids, "trash")
    assert done.approval_status == "pending_approval" and done.approval_id
    assert _count(dovecot, "INBOX") == 12
    state = await app.trash.decide(done.approval_id, Decision(decision="approve", approver="olga", channel="api"))
    assert state.status == "trashed"
    assert [o.result for o in state.outcomes] == ["moved from inbox to trash"] * 12
    assert _count(dovecot, "INBOX") == 0 and _count(dovecot, "Trash") == 12  # moved, never expunged


@pytest.mark.parametrize("dovecot", [{"Deleted Items": "\\Trash"}], indirect=True)
async def test_a_move_to_the_servers_special_use_trash_waits_like_a_trash(imap_app: Mailgate, dovecot: Dovecot) -> None:
    """Outlook's Deleted Items, Gmail's [Gmail]/Trash: the \\Trash folder by another name is the trash."""
    app = imap_app
    box = test_real_providers.IMAP_BOX
    await app.mailboxes.set_mode(box, "gated_send", actor="ops", role="human")
    for n in range(1, 13):
        imap_append(dovecot, "INBOX", inbound(n, subject="Old"))
    await app.providers.for_mailbox(box).sync()  # type: ignore[attr-defined]
    ids = [e.email_id for e in (await app.inbox.search(box, "old", limit=100)).emails]
    done = await app.manager.manage(box, ids, "move", folder="Deleted Items")
    assert done.action == "trash" and done.approval_status == "pending_approval" and done.approval_id
    assert done.changed == 0 and _count(dovecot, "INBOX") == 12 and _count(dovecot, "Deleted Items") == 0
    state = await app.trash.decide(done.approval_id, Decision(decision="approve", approver="olga", channel="api"))
    assert state.status == "trashed"
    # The approved trash lands in the server's own trash, not in a new folder named Trash.
    assert _count(dovecot, "INBOX") == 0 and _count(dovecot, "Deleted Items") == 12
    assert "Trash" not in dovecot.doveadm("mailbox", "list", "-u", IMAP_USER).split()


def _count(server: Dovecot, folder: str) -> int:
    out = server.doveadm("search", "-u", IMAP_USER, "mailbox", folder, "all")
    return len([line for line in out.splitlines() if line.strip()])


@pytest.mark.e2e
async def test_the_cli_lists_and_decides_trash_requests(serve: Serve) -> None:
    import smtplib
    from email.message import EmailMessage

    box = "agent@mailgate.local"
    serve.start()
    with smtplib.SMTP("127.0.0.1", serve.smtp_port, timeout=10) as smtp:
        for n in range(11):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "bob@example.com", box, f"Promo {n}"
            msg.set_content("buy now")
            smtp.send_message(msg)
    async with serve.mcp() as client:
        for _ in range(50):
            found = await client.call_tool("search_email", {"mailbox": box, "query": "promo", "limit": 50})
            assert found.structured_content is not None
            ids = [e["email_id"] for e in found.structured_content["emails"]]
            if len(ids) == 11:
                break
            await asyncio.sleep(0.2)
        asked = await client.call_tool("manage_email", {"mailbox": box, "email_ids": ids, "action": "trash"})
        assert asked.structured_content is not None
        request_id = asked.structured_content["approval_id"]
        listed = await asyncio.to_thread(serve.cli, "approvals", "list")
        assert request_id in listed.stdout and "[trash 11 emails" in listed.stdout
        approved = await asyncio.to_thread(serve.cli, "approvals", "approve", request_id, "--as", "olga", "--json")
        assert approved.returncode == 0, approved.stderr
        assert json.loads(approved.stdout)["status"] == "trashed"
        done = await client.call_tool("manage_email", {"mailbox": box, "email_ids": ids, "action": "trash"})
        assert done.structured_content is not None and done.structured_content["changed"] == 11
    assert serve.stop() == 0
