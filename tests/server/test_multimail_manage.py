"""manage_email and the draft tools on a MultiMail mailbox (the contract server), through MCP and
the whole application: what MultiMail's API allows works, the rest is refused per id with what to
do instead, oversight holds per mode, and held inbound mail stays out of reach of every action."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.credentials import load_secrets
from server.settings import MailboxEntry
from tests.support.app import make_settings, unique_mailbox
from tests.support.mcp import connected, text_of
from tests.support.peers.multimail_fake import FakeServer
from workflows.models import OversightMode
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker

ACTIONS: tuple[tuple[str, dict[str, str]], ...] = (
    ("archive", {}),
    ("move", {"folder": "Kept"}),
    ("label", {"label": "work"}),
    ("unlabel", {"label": "work"}),
    ("mark_read", {}),
    ("mark_unread", {}),
    ("trash", {}),
)
DONE = {"label", "unlabel", "mark_read"}  # what MultiMail's API can do


@pytest.fixture
def multimail() -> Iterator[FakeServer]:
    running = FakeServer().start()
    yield running
    running.stop()
    assert running.fake.violations == []


@pytest.fixture
async def mm_app(
    temporal_env: WorkflowEnvironment, tmp_path: Path, multimail: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Mailgate]:
    monkeypatch.setenv("TEST_MM_KEY", "mm_live_sender")
    address = unique_mailbox("mm")
    entry = MailboxEntry(
        address=address,
        provider="multimail",
        api_key_env="TEST_MM_KEY",
        multimail_mailbox_id=multimail.fake.add_mailbox(address, "autonomous"),
        base_url=multimail.url,
        oversight_mode="autonomous",
    )
    settings = make_settings(temporal_env, tmp_path, mailboxes=[entry])
    app = Mailgate.build(settings, temporal_env.client, load_secrets(settings))
    async with build_worker(
        temporal_env.client, settings.task_queue, app.providers, proof_key=proof_key(app.secrets.secret_key)
    ):
        await app.mailboxes.ensure(entry, created_by="tests")
        yield app
    await app.providers.aclose()


def arrive(multimail: FakeServer, address: str, subject: str) -> dict[str, Any]:
    [box] = [b["id"] for b in multimail.fake.mailboxes.values() if b["address"] == address]
    return multimail.fake.add_email(
        box, "inbound", from_="carol@example.org", to=[address], subject=subject, markdown="Quarterly numbers."
    )


async def manage(client: Client, mailbox: str, ids: list[str], action: str, **extra: str) -> Any:
    return await client.call_tool("manage_email", {"mailbox": mailbox, "email_ids": ids, "action": action, **extra})


def mailbox_of(app: Mailgate) -> str:
    [entry] = app.settings.mailboxes
    return entry.address


async def test_labels_and_read_flags_work_and_the_rest_is_refused_per_id(
    mm_app: Mailgate, multimail: FakeServer
) -> None:
    mailbox = mailbox_of(mm_app)
    first, second = arrive(multimail, mailbox, "One"), arrive(multimail, mailbox, "Two")
    ids = [first["id"], second["id"], "em_99999999"]
    async with connected(mm_app) as client:
        labelled = await manage(client, mailbox, ids, "label", label="work")
        assert not labelled.is_error, text_of(labelled)
        assert [(r["ok"], r["result"]) for r in labelled.structured_content["results"]] == [
            (True, "labelled work"),
            (True, "labelled work"),
            (False, "not found in this mailbox"),
        ]
        assert labelled.structured_content["changed"] == 2
        assert first["tags"] == second["tags"] == {"work": "true"}
        assert first["status"] == "unread"  # labelling read nothing
        read = await manage(client, mailbox, [first["id"]], "mark_read")
        assert read.structured_content["results"][0]["result"] == "marked read" and first["status"] == "read"
        unlabelled = await manage(client, mailbox, [second["id"]], "unlabel", label="work")
        assert unlabelled.structured_content["changed"] == 1 and second["tags"] == {}

        for action, extra in ACTIONS:
            if action in DONE:
                continue
            refused = await manage(client, mailbox, ids[:2], action, **extra)
            assert not refused.is_error, text_of(refused)
            results = refused.structured_content["results"]
            assert [r["ok"] for r in results] == [False, False] and refused.structured_content["changed"] == 0
            assert all("MultiMail" in r["result"] and "action='label'" in r["result"] for r in results)

        draft = await client.call_tool("create_draft", {"mailbox": mailbox, "subject": "Plan", "body": "v1"})
        assert draft.is_error and "no drafts" in text_of(draft) and "durable_send" in text_of(draft)
        listed = await client.call_tool("list_drafts", {"mailbox": mailbox})
        assert listed.structured_content == {"mailbox": mailbox, "drafts": []}
        for tool, args in (("update_draft", {"body": "v2"}), ("delete_draft", {})):
            answer = await client.call_tool(tool, {"mailbox": mailbox, "draft_id": "d1", **args})
            assert answer.is_error and "no drafts" in text_of(answer)
    assert first["status"] == "read" and second["status"] == "unread"
    assert not [e for e in multimail.fake.emails.values() if e["direction"] == "outbound"]
    audit = {(e.kind, e.detail) for e in (await mm_app.mailboxes.state(mailbox)).audit}
    assert ("email_label", f"label -> work: {first['id']}, {second['id']}") in audit
    assert ("email_mark_read", f"mark_read: {first['id']}") in audit
    assert not [kind for kind, _ in audit if kind in ("email_archive", "email_trash", "draft_created")]


@pytest.mark.parametrize("mode", ["read_only", "gated_all", "gated_send", "monitored", "autonomous"])
async def test_oversight_per_mode(mm_app: Mailgate, multimail: FakeServer, mode: OversightMode) -> None:
    mailbox = mailbox_of(mm_app)
    email = arrive(multimail, mailbox, "Before")  # seen before the mode changed: visible
    async with connected(mm_app) as client:
        listed = (await client.call_tool("check_inbox", {"mailbox": mailbox})).structured_content
        assert listed is not None and [e["email_id"] for e in listed["emails"]] == [email["id"]]
        await mm_app.mailboxes.set_mode(mailbox, mode, actor="ops", role="human")
        later = arrive(multimail, mailbox, "After")  # first seen now: held in gated_all
        for action, extra in ACTIONS:
            answer = await manage(client, mailbox, [email["id"], later["id"]], action, **extra)
            if mode == "read_only":
                assert answer.is_error and "read_only" in text_of(answer) and "request_upgrade" in text_of(answer)
                continue
            assert not answer.is_error, text_of(answer)
            results = answer.structured_content["results"]
            assert results[0]["ok"] == (action in DONE), results
            if mode == "gated_all" and action in DONE:
                assert (results[1]["ok"], results[1]["result"]) == (False, "not found in this mailbox")
            else:
                assert results[1]["ok"] == (action in DONE), results
        # A bulk trash is refused at once too: no human is asked to approve what cannot happen.
        bulk = await manage(client, mailbox, [email["id"], *(f"em_{n:08d}" for n in range(11))], "trash")
        if mode != "read_only":
            assert bulk.structured_content.get("approval_id") is None and bulk.structured_content["changed"] == 0
            assert all("cannot trash" in r["result"] for r in bulk.structured_content["results"])
        for tool, args in (
            ("create_draft", {"subject": "Plan", "body": "v1"}),
            ("update_draft", {"draft_id": "d1", "body": "v2"}),
            ("delete_draft", {"draft_id": "d1"}),
        ):
            answer = await client.call_tool(tool, {"mailbox": mailbox, **args})
            assert answer.is_error
            assert ("read_only" if mode == "read_only" else "no drafts") in text_of(answer)
    if mode == "read_only":
        assert email["tags"] == {} and email["status"] == "unread"
        assert not [e for e in (await mm_app.mailboxes.state(mailbox)).audit if e.kind.startswith("email_")]
    if mode == "gated_all":
        # The held email was never touched: no tag, still unread, and it shows only as held.
        assert later["tags"] == {} and later["status"] == "unread"
        assert [e.email_id for e in await mm_app.inbox.held(mailbox)] == [later["id"]]


async def test_labels_that_could_touch_mailgates_tags_or_the_api_are_refused(
    mm_app: Mailgate, multimail: FakeServer
) -> None:
    """An agent's labels through MCP: mailgate's own tag in any spelling, path steps, header-ish,
    empty and overlong ones change nothing at MultiMail."""
    mailbox = mailbox_of(mm_app)
    email = arrive(multimail, mailbox, "Tagged")
    email["tags"] = {"mailgate_send_id": "send-1"}
    bad = [
        "mailgate_send_id",
        " mailgate_send_id ",
        "Mailgate_send_id",
        "\uff4dailgate_send_id",
        "..",
        ".",
        "",
        "  ",
        "x" * 65,
        "a\r\nBcc: eve@example.org",
        "a:b",
    ]
    async with connected(mm_app) as client:
        for label in bad:
            for action in ("label", "unlabel"):
                answer = await manage(client, mailbox, [email["id"]], action, label=label)
                changed = (answer.structured_content or {}).get("changed", 0)
                assert answer.is_error or changed == 0, (label, action, text_of(answer))
    assert email["tags"] == {"mailgate_send_id": "send-1"}
    assert not [r for r in multimail.fake.requests if r[0] in ("PUT", "DELETE")]
