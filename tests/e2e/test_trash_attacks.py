"""Attacks on bulk trash approvals against one real `mailgate serve` (shared by this module): an
agent holding only its token and its mailbox's inbound mail tries to get its own trash request
decided by someone who may not decide it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import smtplib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.peers.slack_fake import BOT_TOKEN, CHANNEL, SIGNING_SECRET, SlackServer, block_action, signed
from tests.support.serve import Serve
from tests.support.wait import eventually
from workflows.providers.sandbox.store import SandboxStore

pytestmark = pytest.mark.e2e
BOX = "tidy@mailgate.local"
FIONA = "fiona@example.com"  # approves BOX, and owns the agent that asks
PAUL = "paul@example.com"  # approves BOX, owns nothing
BRIEF = "brief@mailgate.local"  # a mailbox whose requests expire after about ten seconds


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    root = tmp_path_factory.mktemp("trash-attacks")
    config = root / "mailgate.toml"
    config.write_text(
        f'[[mailboxes]]\naddress = "{BOX}"\noversight_mode = "gated_send"\napprovers = ["{FIONA}", "{PAUL}"]\n'
        f'slack_channel = "{CHANNEL}"\n\n[[mailboxes]]\naddress = "{BRIEF}"\napprovers = ["{PAUL}"]\n'
        "approval_window_hours = 0.003\n\n[notifications]\nsandbox = true\n"
    )
    SLACK.append(SlackServer().start())
    SLACK[0].fake.add_user(FIONA_SLACK, FIONA)
    serve = Serve(
        root / "data",
        extra_env={
            "MAILGATE_CONFIG": str(config),
            "MAILGATE_SLACK_BOT_TOKEN": BOT_TOKEN,
            "MAILGATE_SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "MAILGATE_SLACK_API_URL": SLACK[0].api_url,
        },
    )
    serve.data_dir.mkdir()
    try:
        serve.start()
        for person in (FIONA, PAUL):  # their inboxes, in the sandbox: no agent reads them
            SandboxStore(serve.data_dir / "sandbox.db").create_mailbox(person)
        yield serve
    finally:
        if serve.process is not None:
            serve.stop()
        SLACK[0].stop()
        with contextlib.suppress(OSError, ValueError, KeyError):
            os.kill(serve.temporal_pid(), signal.SIGKILL)


SLACK: list[SlackServer] = []
FIONA_SLACK = "UFIONA"


def slack_ts(request_id: str) -> str | None:
    """The Slack message whose buttons decide this request."""
    for (_, ts), message in list(SLACK[0].fake.messages.items()):
        values = [e.get("value") for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
        if request_id in values:
            return str(ts)
    return None


def people(stack: Serve) -> tuple[dict[str, object], dict[str, object]]:
    """Fiona and Paul as people with API tokens (made once for the module)."""
    if not PEOPLE:
        PEOPLE.extend(made(stack, "people", "add", who, "--approves", BOX) for who in (FIONA, PAUL))
    return PEOPLE[0], PEOPLE[1]


PEOPLE: list[dict[str, object]] = []


def made(stack: Serve, *args: str) -> dict[str, object]:
    done = stack.cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    value: dict[str, object] = json.loads(done.stdout)
    return value


@contextlib.asynccontextmanager
async def agent(stack: Serve, token: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(f"{stack.url}/mcp", http_client=http)) as client,
    ):
        yield client


def deliver(stack: Serve, word: str, count: int = 11) -> None:
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=10) as smtp:
        for n in range(count):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "news@shop.example", BOX, f"{word} {n}"
            msg.set_content("buy now")
            smtp.send_message(msg)


async def ask_trash(client: Client, word: str, count: int = 11) -> str:
    """The agent finds the emails and asks to trash them all: a request that waits for a human."""
    ids: list[str] = []
    for _ in range(100):
        found = await client.call_tool("search_email", {"mailbox": BOX, "query": word, "limit": 50})
        assert found.structured_content is not None, found.content
        ids = [e["email_id"] for e in found.structured_content["emails"]]
        if len(ids) == count:
            break
        await asyncio.sleep(0.1)
    assert len(ids) == count, ids
    asked = await client.call_tool("manage_email", {"mailbox": BOX, "email_ids": ids, "action": "trash"})
    data = asked.structured_content or {}
    assert data.get("approval_status") == "pending_approval", asked.content
    return str(data["approval_id"])


async def test_the_owner_of_the_agent_that_asked_cannot_decide_its_trash(stack: Serve) -> None:
    """A trash request was recorded as asked by "agent", whoever asked: the rule that keeps the
    owner of an agent (who may hold its token) from approving its requests never matched."""
    fiona, paul = people(stack)
    helper = made(stack, "agents", "add", "tidier", "--mailbox", BOX, "--owner", FIONA)
    deliver(stack, "Promo")
    async with agent(stack, str(helper["token"])) as client:
        request_id = await ask_trash(client, "Promo")

    def person(token: object) -> httpx.Client:
        return httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    with person(fiona["api_token"]) as owner, person(paul["api_token"]) as other:
        # Not listed for her, and refused if she tries all the same.
        assert request_id not in str(owner.get("/api/approvals").json())
        assert request_id in str(other.get("/api/approvals").json())
        refused = owner.post(f"/api/approvals/{request_id}/approve", json={})
        assert refused.status_code == 403 and "owns agent tidier" in refused.text, refused.text
        # Her Slack identity is refused the same way.
        await eventually(lambda: slack_ts(request_id), timeout=60)
        body, headers = signed(block_action(FIONA_SLACK, "mailgate_approve", request_id, slack_ts(request_id) or ""))
        assert other.post("/webhooks/slack", content=body, headers=headers).status_code == 200
        assert "owns agent tidier" in SLACK[0].fake.called("chat.postEphemeral")[-1]["text"]
        shown = other.get(f"/api/sends/{request_id}").json()
        assert shown["status"] == "pending_approval" and shown["requester"] == "tidier", shown
        approved = other.post(f"/api/approvals/{request_id}/approve", json={})
        assert approved.status_code == 200 and approved.json()["status"] == "trashed", approved.text


def notices_for(stack: Serve, person: str, some_id: str) -> list[str]:
    """The texts of the notices about ``some_id`` in this person's sandbox inbox, oldest first."""
    with sqlite3.connect(stack.data_dir / "sandbox.db") as db:
        rows = db.execute("SELECT raw FROM messages WHERE mailbox = ? ORDER BY rowid", (person,)).fetchall()
    found = []
    for (raw,) in rows:
        mail = message_from_bytes(bytes(raw), policy=default)
        body = mail.get_body(("plain",)) if isinstance(mail, EmailMessage) else None
        text = str(body.get_content()) if body is not None else ""
        if some_id in text:
            found.append(text)
    return found


def notice_for(stack: Serve, person: str, some_id: str) -> str | None:
    """The text of the first notice about ``some_id`` in this person's sandbox inbox, if one came."""
    return next(iter(notices_for(stack, person, some_id)), None)


def links_in(text: str) -> dict[str, str]:
    return dict(re.findall(r"^(Approve|Reject):\s+(\S+/links/[\w.-]+)", text, re.MULTILINE))


def links_for(stack: Serve, person: str, some_id: str) -> dict[str, str]:
    """The one-click links of that notice (none yet: {})."""
    return links_in(notice_for(stack, person, some_id) or "")


async def test_an_approver_who_owns_the_agent_cannot_decide_by_the_emailed_link(stack: Serve) -> None:
    """The mailbox lists the owner among its approvers, so the notice with one-click links goes to
    her too. The API, dashboard and Slack refuse her for her own agent's requests; the link did not."""
    people(stack)
    helper = made(stack, "agents", "add", "sweeper", "--mailbox", BOX, "--owner", FIONA)
    deliver(stack, "Flyer")
    async with agent(stack, str(helper["token"])) as client:
        request_id = await ask_trash(client, "Flyer")
        sent = await client.call_tool(
            "durable_send", {"mailbox": BOX, "to": ["b@example.com"], "subject": "Sweep", "body": "b"}
        )
    send_id = str((sent.structured_content or {})["send_id"])
    admin = {"Authorization": f"Bearer {stack.token('admin')}"}
    async with httpx.AsyncClient(timeout=30) as http:
        for some_id in (request_id, send_id):
            await eventually(lambda: links_for(stack, FIONA, some_id), timeout=60)  # noqa: B023
            links = links_for(stack, FIONA, some_id)
            refused = await http.post(links["Approve"])
            assert refused.status_code == 403 and "owns agent sweeper" in refused.text, refused.text
            shown = (await http.get(f"{stack.url}/api/sends/{some_id}", headers=admin)).json()
            assert shown["status"] == "pending_approval", shown
            # Paul, who owns nothing, decides with his own link.
            await eventually(lambda: links_for(stack, PAUL, some_id), timeout=60)  # noqa: B023
            rejected = await http.post(links_for(stack, PAUL, some_id)["Reject"])
            assert rejected.status_code == 200, rejected.text


async def test_the_owner_cannot_decide_her_agents_trash_on_the_dashboard(stack: Serve) -> None:
    """The dashboard's trash page asked the approver rule without the requester."""
    fiona, _ = people(stack)
    helper = made(stack, "agents", "add", "duster", "--mailbox", BOX, "--owner", FIONA)
    deliver(stack, "Voucher")
    async with agent(stack, str(helper["token"])) as client:
        request_id = await ask_trash(client, "Voucher")
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        signin = await http.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', signin.text)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "email": FIONA, "password": str(fiona["password"])}
        assert (await http.post("/signin", data=form)).status_code == 303
        assert request_id not in (await http.get("/trash")).text
        page = await http.get(f"/trash/{request_id}")
        assert page.status_code == 200 and f"/trash/{request_id}/approve" not in page.text, page.text
        token = re.search(r'name="csrf" value="([^"]+)"', (await http.get("/")).text)
        assert token is not None
        tried = await http.post(f"/trash/{request_id}/approve", data={"csrf": token.group(1)})
        assert tried.status_code == 403 and "owns agent duster" in tried.text, (tried.status_code, tried.text)
    admin = {"Authorization": f"Bearer {stack.token('admin')}"}
    shown = httpx.get(f"{stack.url}/api/sends/{request_id}", headers=admin, timeout=30).json()
    assert shown["status"] == "pending_approval", shown


async def test_a_move_to_the_trash_folder_is_a_trash_and_waits_like_one(stack: Serve) -> None:
    """manage_email's move took folder='trash' (any case) and moved every email there at once,
    around the approval a trash of more than trash_approval_over ids waits for."""
    deliver(stack, "Brochure")
    async with stack.mcp() as client:
        ids: list[str] = []
        for _ in range(100):
            found = await client.call_tool("search_email", {"mailbox": BOX, "query": "Brochure", "limit": 50})
            ids = [e["email_id"] for e in (found.structured_content or {}).get("emails", [])]
            if len(ids) == 11:
                break
            await asyncio.sleep(0.1)
        for folder in ("trash", "Trash", " TRASH "):
            moved = await client.call_tool(
                "manage_email", {"mailbox": BOX, "email_ids": ids, "action": "move", "folder": folder}
            )
            data = moved.structured_content or {}
            assert data.get("changed") == 0 and data.get("approval_status") == "pending_approval", moved.content
        trashed = await client.call_tool("search_email", {"mailbox": BOX, "query": "Brochure in:trash", "limit": 50})
    assert (trashed.structured_content or {}).get("emails") == [], trashed.content


async def test_a_link_for_an_expired_request_does_not_decide_it_asked_again(stack: Serve) -> None:
    """A trash request that expired may be asked again under the same id (the same emails). Its
    notice's links had the same nonce again, remembered per run only: the link emailed about the
    expired request approved the new one, which no human had been told about."""
    admin = {"Authorization": f"Bearer {stack.token('admin')}"}

    def status(request_id: str) -> str:
        return str(httpx.get(f"{stack.url}/api/sends/{request_id}", headers=admin, timeout=30).json()["status"])

    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=10) as smtp:
        for n in range(11):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "news@shop.example", BRIEF, f"Sticker {n}"
            msg.set_content("buy now")
            smtp.send_message(msg)
    async with stack.mcp() as client:
        ids: list[str] = []
        for _ in range(100):
            found = await client.call_tool("search_email", {"mailbox": BRIEF, "query": "Sticker", "limit": 50})
            ids = [e["email_id"] for e in (found.structured_content or {}).get("emails", [])]
            if len(ids) == 11:
                break
            await asyncio.sleep(0.1)
        args = {"mailbox": BRIEF, "email_ids": ids, "action": "trash"}
        request_id = str(((await client.call_tool("manage_email", args)).structured_content or {})["approval_id"])
        await eventually(lambda: links_for(stack, PAUL, request_id), timeout=60)
        old = links_for(stack, PAUL, request_id)
        await eventually(lambda: status(request_id) == "expired", timeout=60)
        again = await client.call_tool("manage_email", args)
        assert (again.structured_content or {}).get("approval_status") == "pending_approval", again.content
    async with httpx.AsyncClient(timeout=30) as http:
        stale = await http.post(old["Approve"])
        assert stale.status_code == 403 and "earlier request" in stale.text, stale.text
    assert status(request_id) == "pending_approval"
    # And the approvers are told about the new run: its notice is no duplicate of the expired one's.
    await eventually(lambda: len([t for t in notices_for(stack, PAUL, request_id) if links_in(t)]) == 2, timeout=60)
    fresh = links_in(notices_for(stack, PAUL, request_id)[-1])
    assert fresh and fresh["Approve"] != old["Approve"]


async def test_an_agent_that_makes_a_mailbox_at_an_approvers_address_reads_no_link(stack: Serve) -> None:
    """Last in this module: the approver's sandbox inbox, where earlier notices carried links,
    becomes a mailbox of the agent. Notices there stay hidden, and new ones carry no link."""
    assert links_for(stack, FIONA, "trash-")  # links were mailed to her inbox before
    async with stack.mcp() as client:
        made_box = await client.call_tool("create_mailbox", {"address": FIONA})
        assert not made_box.is_error, made_box.content
        seen: list[str] = []
        for tool, args in (
            ("check_inbox", {"mailbox": FIONA, "limit": 100}),
            ("search_email", {"mailbox": FIONA, "query": "mailgate", "limit": 100}),
        ):
            listed = await client.call_tool(tool, args)
            seen.append(str(listed.content))
            ids = [e["email_id"] for e in (listed.structured_content or {}).get("emails", [])]
            for email_id in [*ids, *map(str, range(1, 40))]:  # listed, and guessed
                read = await client.call_tool("read_email", {"mailbox": FIONA, "email_id": email_id})
                seen.append(str(read.content))
        deliver(stack, "Coupon")
        request_id = await ask_trash(client, "Coupon")
    await eventually(lambda: notice_for(stack, FIONA, request_id), timeout=60)
    assert "/links/" not in "".join(seen)
    assert "/links/" not in (notice_for(stack, FIONA, request_id) or "")  # now: the dashboard only
    assert links_for(stack, PAUL, request_id)
