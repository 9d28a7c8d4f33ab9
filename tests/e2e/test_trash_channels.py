"""A bulk trash waits for a human through the same channels as a send, end to end through one
`mailgate serve` (shared by this module's tests): the approver's notice email with one-click
links (a forged or altered link refused), the approval webhook, Slack buttons (by the approver
rule), the approval listings, and a finished request re-run straight in Temporal.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import smtplib
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import httpx
import pytest
from mcp import Client as McpClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client

from tests.support.histories import keep_history
from tests.support.peers.app_thread import AppThread
from tests.support.peers.slack_fake import (
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    SlackServer,
    block_action,
    reject_submission,
    signed,
)
from tests.support.serve import Serve
from tests.support.wait import eventually
from workflows.models import Decision
from workflows.notices import Notice
from workflows.notify import NotifyWorkflow
from workflows.providers.sandbox.store import SandboxStore
from workflows.temporal import data_converter
from workflows.trash_approval import BulkTrashWorkflow, TrashRequest, TrashState
from workflows.trust import standard_webhooks

pytestmark = pytest.mark.e2e
BOX = "team@mailgate.local"
OLGA = "olga@approvers.example"  # an approver whose inbox is in the sandbox: no agent can read it
ALICE = "alice@example.com"  # an approver in Slack
REVIEWER = "rita@example.com"  # sees the mailbox, may not decide for it
ALICE_ID, MALLORY_ID = "UALICE", "UMALLORY"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"trash-webhook-secret-0123456789ab").decode()
APPROVALS_SECRET = "whsec_" + base64.b64encode(b"trash-approvals-in-0123456789abcd").decode()
MULTIMAIL_SECRET = "mm-trash-webhook-secret"


class Hooks(AppThread):
    """The approval webhook's receiver: every event whose Standard Webhooks signature holds."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

        async def receive(request: Request) -> Response:
            body = await request.body()
            standard_webhooks.verify(WEBHOOK_SECRET, request.headers, body, time.time())
            self.events.append(json.loads(body))
            return Response(status_code=204)

        super().__init__(Starlette(routes=[Route("/hook", receive, methods=["POST"])]))


Stack = tuple[Serve, SlackServer, Hooks]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("trash-channels")
    config = root / "mailgate.toml"
    config.write_text(
        f'[[mailboxes]]\naddress = "{BOX}"\noversight_mode = "gated_send"\n'
        f'approvers = ["{OLGA}", "{ALICE}"]\nslack_channel = "{CHANNEL}"\n\n'
        "[notifications]\nsandbox = true\n"
    )
    slack, hooks = SlackServer().start(), Hooks().start()
    slack.fake.add_user(ALICE_ID, ALICE)
    slack.fake.add_user(MALLORY_ID, "mallory@example.com")
    serve = Serve(root / "data")
    serve.data_dir.mkdir()
    serve.extra_env.update(
        MAILGATE_CONFIG=str(config),
        MAILGATE_SLACK_BOT_TOKEN=BOT_TOKEN,
        MAILGATE_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        MAILGATE_SLACK_API_URL=slack.api_url,
        MAILGATE_NOTIFY_WEBHOOK_URL=f"{hooks.url}/hook",
        MAILGATE_NOTIFY_WEBHOOK_SECRET=WEBHOOK_SECRET,
        MAILGATE_APPROVAL_WEBHOOK_SECRET=APPROVALS_SECRET,
        MAILGATE_MULTIMAIL_WEBHOOK_SECRET=MULTIMAIL_SECRET,
    )
    try:
        serve.start()
        SandboxStore(serve.data_dir / "sandbox.db").create_mailbox(OLGA)
        yield serve, slack, hooks
    finally:
        if serve.process is not None:
            serve.stop()
        slack.stop()
        hooks.stop()


def deliver_inbound(serve: Serve, word: str, count: int = 11) -> None:
    with smtplib.SMTP("127.0.0.1", serve.smtp_port, timeout=10) as smtp:
        for n in range(count):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "news@shop.example", BOX, f"{word} {n}"
            msg.set_content("buy now")
            smtp.send_message(msg)


async def ids_of(agent: McpClient, word: str, count: int = 11) -> list[str]:
    ids: list[str] = []
    for _ in range(100):
        found = await agent.call_tool("search_email", {"mailbox": BOX, "query": word, "limit": 50})
        assert found.structured_content is not None, found.content
        ids = [e["email_id"] for e in found.structured_content["emails"]]
        if len(ids) == count:
            return ids
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(ids)} of {count} {word} emails arrived")


async def ask_trash(serve: Serve, word: str) -> tuple[str, list[str]]:
    """What an agent does: trash 11 emails at once; the request id and the email ids."""
    await asyncio.to_thread(deliver_inbound, serve, word)
    async with serve.mcp() as agent:
        ids = await ids_of(agent, word)
        asked = await agent.call_tool("manage_email", {"mailbox": BOX, "email_ids": ids, "action": "trash"})
    assert asked.structured_content is not None, asked.content
    assert asked.structured_content["approval_status"] == "pending_approval"
    return str(asked.structured_content["approval_id"]), ids


async def in_trash(serve: Serve, word: str) -> int:
    async with serve.mcp() as agent:
        found = await agent.call_tool("search_email", {"mailbox": BOX, "query": f"{word} in:trash", "limit": 50})
    assert found.structured_content is not None, found.content
    return len(found.structured_content["emails"])


def status(serve: Serve, request_id: str) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {serve.token('admin')}"}
    shown = httpx.get(f"{serve.url}/api/sends/{request_id}", headers=admin, timeout=30)
    assert shown.status_code == 200, shown.text
    return dict(shown.json())


def olga_notices(serve: Serve) -> list[EmailMessage]:
    with sqlite3.connect(serve.data_dir / "sandbox.db") as db:
        rows = db.execute("SELECT raw FROM messages WHERE mailbox = ?", (OLGA,)).fetchall()
    found = [message_from_bytes(bytes(r[0]), policy=default) for r in rows]
    return [m for m in found if isinstance(m, EmailMessage)]


def links_in(notice: EmailMessage) -> dict[str, str]:
    body = notice.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    return dict(re.findall(r"^(Approve|Reject):\s+(\S+/links/[\w.-]+)", text, re.MULTILINE))


async def test_the_approver_is_emailed_links_that_decide_only_their_trash(stack: Stack) -> None:
    serve, _, hooks = stack
    request_id, ids = await ask_trash(serve, "Alpha")

    def notice() -> EmailMessage | None:
        return next((m for m in olga_notices(serve) if request_id in m.get_body(("plain",)).get_content()), None)  # type: ignore[union-attr]

    await eventually(notice, timeout=60)
    mail = notice()
    assert mail is not None
    assert mail["Subject"] == f"[mailgate] Approval needed: trash 11 emails of {BOX}"
    links = links_in(mail)
    assert set(links) == {"Approve", "Reject"}, mail
    # The approval webhook told the same, signed.
    await eventually(lambda: any(e["data"].get("request_id") == request_id for e in hooks.events))
    event = next(e for e in hooks.events if e["data"].get("request_id") == request_id)
    assert event["type"] == "trash.approval_requested" and event["data"]["count"] == 11

    async with httpx.AsyncClient(timeout=30) as http:
        # Altered links: another request's id in the signed claim, or a signature of someone else's.
        token = links["Approve"].rpartition("/links/")[2]
        payload, _, signature = token.partition(".")
        claim = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        other, _ = await ask_trash(serve, "Bravo")
        moved = base64.urlsafe_b64encode(json.dumps({**claim, "send_id": other}).encode()).decode().rstrip("=")
        for forged in (f"{moved}.{signature}", f"{payload}.{signature[:-2]}AA", f"{payload}."):
            url = f"{serve.url}/links/{forged}"
            assert (await http.get(url)).status_code == 400
            assert (await http.post(url)).status_code == 400
        assert status(serve, request_id)["status"] == "pending_approval"
        assert status(serve, other)["status"] == "pending_approval"

        # Opening the real link decides nothing: it lists the emails and asks.
        shown = await http.get(links["Approve"])
        assert shown.status_code == 200 and "Alpha 3" in shown.text and "Move these 11 emails" in shown.text
        assert status(serve, request_id)["status"] == "pending_approval"
        approved = await http.post(links["Approve"])
        assert approved.status_code == 200 and "Approved" in approved.text, approved.text
        again = await http.post(links["Approve"])
        assert again.status_code == 409
        rejected_late = await http.post(links["Reject"])
        assert rejected_late.status_code == 409  # decided already: nothing left to decide

    await eventually(lambda: status(serve, request_id)["status"] == "trashed", timeout=30)
    state = status(serve, request_id)
    assert (state["decision"]["approver"], state["decision"]["channel"]) == (OLGA, "link")
    assert await in_trash(serve, "Alpha") == 11 and await in_trash(serve, "Bravo") == 0
    # No agent reads a link: the notice went to Olga only, never through the agent's mailbox.
    async with serve.mcp() as agent:
        everything = await agent.call_tool("search_email", {"mailbox": BOX, "query": "mailgate", "limit": 50})
    assert "/links/" not in json.dumps(everything.structured_content)

    # Temporal access re-runs the finished request under its id with its recorded request and
    # approval, after a person took the emails back out of the trash: nothing moves again.
    async with serve.mcp() as agent:
        back = await agent.call_tool(
            "manage_email", {"mailbox": BOX, "email_ids": ids[:5], "action": "move", "folder": "inbox"}
        )
    assert not back.is_error, back.content
    temporal = await Client.connect(f"127.0.0.1:{serve.temporal_port}", data_converter=data_converter())
    await keep_history(temporal, request_id, "trash-notified-link-approved")
    request, decision = await recorded(temporal, request_id)
    rerun = await temporal.start_workflow(BulkTrashWorkflow.run, request, id=request_id, task_queue="mailgate")
    await rerun.signal(BulkTrashWorkflow.decide_signal, decision)
    final: TrashState = await asyncio.wait_for(rerun.result(), 60)
    assert final.status == "blocked" and "another run" in final.reason, final
    assert await in_trash(serve, "Alpha") == 6

    # A trash notice started straight in Temporal, with its own count, tells no human: without
    # a proof, with a made-up one, or with the real request's notice proof for another count.
    before = len(olga_notices(serve))
    tries = ((other, None, 11), (other, "1.00ff", 11), (request_id, request.notice_proof, 99))
    for n, (about, proof, count) in enumerate(tries):
        lure = Notice(
            notice_id=f"notify-{about}-forged-{n}",
            kind="trash_requested",
            mailbox=BOX,
            at=datetime.now(UTC),
            requester="default",  # the built-in agent asked: only the count differs
            trash_request_id=about,
            email_count=count,
            proof=proof,
        )
        handle = await temporal.start_workflow(NotifyWorkflow.run, lure, id=lure.notice_id, task_queue="mailgate")
        report = await asyncio.wait_for(handle.result(), 60)
        assert report.emailed == () and OLGA in report.failed and report.webhook.startswith("failed"), report
    assert len(olga_notices(serve)) == before


async def recorded(temporal: Client, request_id: str) -> tuple[TrashRequest, Decision]:
    """What anyone who reads Temporal finds in a finished request's history."""
    request: TrashRequest | None = None
    decision: Decision | None = None
    async for event in temporal.get_workflow_handle(request_id).fetch_history_events():
        if event.HasField("workflow_execution_started_event_attributes"):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [request] = await temporal.data_converter.decode(payloads, [TrashRequest])
        if event.HasField("workflow_execution_signaled_event_attributes"):
            signal = event.workflow_execution_signaled_event_attributes
            if signal.signal_name == "decide_signal":
                [decision] = await temporal.data_converter.decode(signal.input.payloads, [Decision])
    assert request is not None and request.proof and decision is not None and decision.proof
    return request, decision


def buttons_of(message: dict[str, Any]) -> list[str]:
    return [e.get("action_id", "") for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def test_slack_buttons_decide_a_trash_request_by_the_approver_rule(stack: Stack) -> None:
    serve, slack, _ = stack
    fake = slack.fake
    approve_me, _ = await ask_trash(serve, "Charlie")
    reject_me, _ = await ask_trash(serve, "Delta")

    def ts_of(request_id: str) -> str | None:
        for (_, ts), message in list(fake.messages.items()):
            values = [e.get("value") for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
            if request_id in values:
                return ts
        return None

    await eventually(lambda: ts_of(approve_me) and ts_of(reject_me), timeout=60)
    ts, ts_reject = ts_of(approve_me), ts_of(reject_me)
    assert ts is not None and ts_reject is not None
    first = fake.message(ts)
    assert buttons_of(first) == ["mailgate_approve", "mailgate_reject", "mailgate_edit"]
    assert "Trash emails of team@mailgate.local" in json.dumps(first["blocks"]) and "11" in json.dumps(first)
    assert first["blocks"][-1]["elements"][2]["url"] == f"{serve.url}/trash/{approve_me}"

    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:

        async def post(payload: dict[str, Any]) -> httpx.Response:
            body, headers = signed(payload)
            return await http.post("/webhooks/slack", content=body, headers=headers)

        # Someone who does not approve the mailbox: told privately, nothing changes.
        assert (await post(block_action(MALLORY_ID, "mailgate_approve", approve_me, ts))).status_code == 200
        assert "not an approver" in fake.called("chat.postEphemeral")[-1]["text"]
        assert status(serve, approve_me)["status"] == "pending_approval"
        # An approver: trashed, and the message updated in place without buttons.
        assert (await post(block_action(ALICE_ID, "mailgate_approve", approve_me, ts))).status_code == 200
        await eventually(lambda: status(serve, approve_me)["status"] == "trashed", timeout=30)
        await eventually(lambda: "Approved" in json.dumps(fake.message(ts)["blocks"]))
        assert buttons_of(fake.message(ts)) == []
        assert status(serve, approve_me)["decision"]["approver"] == ALICE
        assert await in_trash(serve, "Charlie") == 11

        # Rejected through the modal, with a reason the agent reads.
        assert (await post(block_action(ALICE_ID, "mailgate_reject", reject_me, ts_reject))).status_code == 200
        opened = fake.called("views.open")[-1]
        view = {"id": "V0TRASH1", **opened["view"]}
        assert view["private_metadata"] == reject_me
        # The modal speaks of the trash request (mailbox and count), not of an email's subject.
        assert view["title"]["text"] == "Reject trash request"
        assert view["blocks"][0]["text"]["text"] == f"Trash 11 emails of {BOX}"
        assert (await post(reject_submission(MALLORY_ID, view, "no"))).json()["response_action"] == "errors"
        done = await post(reject_submission(ALICE_ID, view, "Keep the receipts"))
        assert done.status_code == 200 and done.content == b""
        await eventually(lambda: status(serve, reject_me)["status"] == "rejected", timeout=30)
        await eventually(lambda: "Keep the receipts" in json.dumps(fake.message(ts_reject)["blocks"]))
        assert await in_trash(serve, "Delta") == 0
    temporal = await Client.connect(f"127.0.0.1:{serve.temporal_port}", data_converter=data_converter())
    await keep_history(temporal, approve_me, "trash-slack-approved")
    await keep_history(temporal, reject_me, "trash-slack-rejected")


async def test_listings_show_pending_trash_to_those_who_may_decide_it(stack: Stack) -> None:
    serve, _, _ = stack
    request_id, ids = await ask_trash(serve, "Echo")
    listed = await asyncio.to_thread(serve.cli, "approvals", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = [r for r in json.loads(listed.stdout) if r.get("request_id") == request_id]
    assert (row["kind"], row["mailbox"], row["count"], row["requester"]) == ("trash", BOX, 11, "default")
    table = await asyncio.to_thread(serve.cli, "approvals", "list")
    assert request_id in table.stdout and "[trash 11 emails, asked by default]" in table.stdout
    # The id pasted from the list: `approvals show` shows the request and each of its emails;
    # `sends show` says in one line which command does.
    as_json = await asyncio.to_thread(serve.cli, "approvals", "show", request_id, "--json")
    assert as_json.returncode == 0, as_json.stderr
    details = json.loads(as_json.stdout)
    assert (details["kind"], details["mailbox"], details["status"], details["requester"]) == (
        "trash",
        BOX,
        "pending_approval",
        "default",
    )
    assert details["email_ids"] == ids and [e["email_id"] for e in details["emails"]] == ids
    assert sorted(e["subject"] for e in details["emails"]) == sorted(f"Echo {n}" for n in range(11))
    text = (await asyncio.to_thread(serve.cli, "approvals", "show", request_id)).stdout
    assert f"mailbox:   {BOX}" in text and "emails:    11 to move to the trash" in text
    assert all(f"Echo {n}" in text for n in range(11)) and "news@shop.example" in text
    refused = await asyncio.to_thread(serve.cli, "sends", "show", request_id)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        f"mailgate: {request_id} is a bulk trash request: `mailgate approvals show {request_id}` shows it"
    ]

    # People: an approver of the mailbox, and a reviewer who sees it but may not decide.
    tokens = {}
    for email, role in ((ALICE, "--approves"), (REVIEWER, "--reviews")):
        added = await asyncio.to_thread(serve.cli, "people", "add", email, role, BOX, "--json")
        assert added.returncode == 0, added.stderr
        tokens[email] = json.loads(added.stdout)["api_token"]
    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        for email, shown in ((ALICE, True), (REVIEWER, False)):
            auth = {"Authorization": f"Bearer {tokens[email]}"}
            answer = (await http.get("/api/approvals", headers=auth)).json()
            assert (request_id in [t["request_id"] for t in answer["trash_requests"]]) is shown, (email, answer)
        admin = {"Authorization": f"Bearer {serve.token('admin')}"}
        every = (await http.get("/api/approvals", headers=admin)).json()["trash_requests"]
        assert request_id in [t["request_id"] for t in every]
        # The dashboard's pending list, marked as trash, with mailbox, count and requester.
        signin = await http.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', signin.text)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "name": "Olga", "token": serve.token("admin")}
        assert (await http.post("/signin", data=form)).status_code == 303
        pending = await http.get("/")
        section = pending.text.partition('id="trash-requests"')[2]
        assert request_id in section and "Trash 11 emails" in section and "default" in section and BOX in section
        # A trash id in a send's URL leads to the request's own page.
        moved = await http.get(f"/sends/{request_id}")
        assert (moved.status_code, moved.headers["location"]) == (303, f"/trash/{request_id}")
    # The reviewer's CLI (their own token) lists no trash of a mailbox they may not decide.
    as_reviewer = serve.env() | {"MAILGATE_API_TOKEN": tokens[REVIEWER]}
    mine = await asyncio.to_thread(_cli_with, serve, as_reviewer, "approvals", "list", "--json")
    assert request_id not in mine


def _cli_with(serve: Serve, env: dict[str, str], *args: str) -> str:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_the_standard_webhook_decides_trash_and_multimails_does_not(stack: Stack) -> None:
    serve, _, _ = stack
    request_id, _ = await ask_trash(serve, "Foxtrot")
    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        # MultiMail has no pending-trash concept: its webhook naming a trash request decides nothing.
        event = {"type": "approval.approved", "workflow_id": request_id, "approver_email": OLGA, "pending_id": "p1"}
        body = json.dumps(event).encode()
        digest = hmac.new(MULTIMAIL_SECRET.encode(), body, hashlib.sha256).hexdigest()
        refused = await http.post("/webhooks/multimail", content=body, headers={"X-MultiMail-Signature": digest})
        assert refused.status_code == 400, refused.text
        assert status(serve, request_id)["status"] == "pending_approval"
        # The Standard Webhooks door decides it like a send, once per webhook-id.
        body = json.dumps({"send_id": request_id, "decision": "approve", "approver": OLGA}).encode()
        headers = standard_webhooks.headers(APPROVALS_SECRET, "msg_trash_1", int(time.time()), body)
        for expected in ("accepted", "duplicate"):
            answer = await http.post("/webhooks/approvals", content=body, headers=headers)
            assert answer.status_code == 200 and answer.json()["status"] == expected, answer.text
    await eventually(lambda: status(serve, request_id)["status"] == "trashed", timeout=30)
    assert status(serve, request_id)["decision"]["channel"] == "webhook"
    assert await in_trash(serve, "Foxtrot") == 11
