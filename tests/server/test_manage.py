"""manage_email through MCP on the sandbox: every action, per-id answers, oversight per mode,
the audit log, and held mail that stays out of reach."""

from __future__ import annotations

from typing import Any

import pytest

from server.app import Mailgate
from tests.support.inbox import receive
from tests.support.mcp import connected, text_of
from workflows.models import OversightMode


async def _ids(app: Mailgate, count: int, subject: str = "Tidy") -> list[str]:
    mailbox = app.settings.default_mailbox
    for n in range(count):
        await receive(app, subject=f"{subject} {n}", body=f"body {n}")
    page = await app.inbox.search(mailbox, f"subject:{subject}", limit=100)
    return [e.email_id for e in page.emails]


async def test_every_action_with_per_id_answers_and_the_audit_log(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    ids = await _ids(app, 4)
    async with connected(app) as client:

        async def manage(action: str, email_ids: list[str], **extra: str) -> dict[str, Any]:
            answer = await client.call_tool(
                "manage_email", {"mailbox": mailbox, "email_ids": email_ids, "action": action, **extra}
            )
            assert not answer.is_error, text_of(answer)
            content: dict[str, Any] | None = answer.structured_content
            assert content is not None
            return content

        archived = await manage("archive", [ids[0], "999999", "nonsense"])
        assert [(r["email_id"], r["ok"]) for r in archived["results"]] == [
            (ids[0], True),
            ("999999", False),
            ("nonsense", False),
        ]
        assert archived["changed"] == 1
        inbox = await client.call_tool("check_inbox", {"mailbox": mailbox, "query": "subject:tidy"})
        assert inbox.structured_content is not None
        assert ids[0] not in {e["email_id"] for e in inbox.structured_content["emails"]}
        found = await client.call_tool("search_email", {"mailbox": mailbox, "query": "in:archive tidy"})
        assert found.structured_content is not None
        assert [e["email_id"] for e in found.structured_content["emails"]] == [ids[0]]

        await manage("move", [ids[1]], folder="Receipts")
        assert [e.email_id for e in (await app.inbox.search(mailbox, "in:receipts")).emails] == [ids[1]]
        await manage("label", ids[1:3], label="work")
        assert {e.email_id for e in (await app.inbox.search(mailbox, "label:work")).emails} == set(ids[1:3])
        await manage("unlabel", [ids[2]], label="work")
        assert [e.email_id for e in (await app.inbox.search(mailbox, "label:work")).emails] == [ids[1]]
        again = await manage("unlabel", [ids[2]], label="work")
        assert again["changed"] == 0
        await manage("mark_read", [ids[3]])
        assert ids[3] not in {e.email_id for e in (await app.inbox.search(mailbox, "is:unread tidy")).emails}
        await manage("mark_unread", [ids[3]])
        assert ids[3] in {e.email_id for e in (await app.inbox.search(mailbox, "is:unread tidy")).emails}
        await manage("trash", [ids[3]])
        assert ids[3] not in {e.email_id for e in (await app.inbox.search(mailbox, "tidy")).emails}
        assert [e.email_id for e in (await app.inbox.search(mailbox, "in:trash")).emails] == [ids[3]]
        # Trashed mail is still there to read: nothing is ever expunged.
        assert (await app.inbox.read(mailbox, ids[3], mark_read=False)).folder == "trash"

        bad = await client.call_tool(
            "manage_email", {"mailbox": mailbox, "email_ids": [ids[0]], "action": "move", "folder": "notices"}
        )
        assert bad.is_error and "cannot be a target" in text_of(bad)
        nolabel = await client.call_tool("manage_email", {"mailbox": mailbox, "email_ids": [ids[0]], "action": "label"})
        assert nolabel.is_error and "label" in text_of(nolabel)
        many = await client.call_tool(
            "manage_email", {"mailbox": mailbox, "email_ids": [str(n) for n in range(101)], "action": "archive"}
        )
        assert many.is_error

    # By the agent's name: the built-in agent of MAILGATE_AGENT_TOKEN is "default".
    audit = (await app.mailboxes.state(mailbox)).audit
    kinds = {(e.kind, e.actor, e.detail) for e in audit}
    assert ("email_archive", "default", f"archive: {ids[0]}") in kinds
    assert ("email_move", "default", f"move -> Receipts: {ids[1]}") in kinds
    assert ("email_trash", "default", f"trash -> trash: {ids[3]}") not in kinds  # trash names no target
    assert ("email_trash", "default", f"trash: {ids[3]}") in kinds


@pytest.mark.parametrize("mode", ["read_only", "gated_all", "gated_send", "monitored", "autonomous"])
async def test_oversight_per_mode(app: Mailgate, mode: OversightMode) -> None:
    mailbox = app.settings.default_mailbox
    ids = await _ids(app, 12, subject=f"Mode{mode.replace('_', '')}")
    await app.mailboxes.set_mode(mailbox, mode, actor="ops", role="human")
    async with connected(app) as client:
        for action, extra in (
            ("archive", {}),
            ("move", {"folder": "Kept"}),
            ("label", {"label": "x"}),
            ("unlabel", {"label": "x"}),
            ("mark_read", {}),
            ("mark_unread", {}),
            ("trash", {}),
        ):
            answer = await client.call_tool(
                "manage_email", {"mailbox": mailbox, "email_ids": ids[:1], "action": action, **extra}
            )
            if mode == "read_only":
                assert answer.is_error and "read_only" in text_of(answer) and "request_upgrade" in text_of(answer)
            else:
                assert not answer.is_error, text_of(answer)
        bulk = await client.call_tool("manage_email", {"mailbox": mailbox, "email_ids": ids[1:], "action": "trash"})
        if mode == "read_only":
            assert bulk.is_error and "read_only" in text_of(bulk)
        elif mode in ("gated_all", "gated_send"):
            # A human decides (tests/server/test_bulk_trash.py); nothing moves until then.
            assert not bulk.is_error and bulk.structured_content is not None
            assert bulk.structured_content["approval_status"] == "pending_approval"
            assert bulk.structured_content["changed"] == 0
        if mode in ("read_only", "gated_all", "gated_send"):
            assert not (await app.inbox.search(mailbox, "in:trash")).emails[1:]  # nothing of the bulk moved
        else:
            assert not bulk.is_error and bulk.structured_content is not None
            assert bulk.structured_content["changed"] == 11
    if mode == "read_only":
        assert not [e for e in (await app.mailboxes.state(mailbox)).audit if e.kind.startswith("email_")]


async def test_held_inbound_mail_is_out_of_reach(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.set_mode(mailbox, "gated_all", actor="ops", role="human")
    await receive(app, subject="Held secret", body="quarterly numbers")
    [held] = await app.inbox.held(mailbox)
    assert not (await app.inbox.search(mailbox, "secret")).emails
    assert not (await app.inbox.search(mailbox, "quarterly")).emails
    done = await app.manager.manage(mailbox, [held.email_id], "archive")
    assert [(r.ok, r.result) for r in done.results] == [(False, "not found in this mailbox")]
    [still] = await app.inbox.held(mailbox)
    assert still.email_id == held.email_id and still.folder == "inbox"
