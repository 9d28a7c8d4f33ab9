"""Drafts through MCP on the sandbox: save (new and reply), list, change, delete; read_only
refuses each change; drafts never show up as mail, in search, or to the watcher."""

from __future__ import annotations

from server.app import Mailgate
from tests.support.inbox import receive
from tests.support.mcp import connected, text_of
from workflows.mail.parsing import parse_email


async def test_drafts_are_saved_listed_changed_and_deleted(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    original = await receive(app, subject="Offer", body="Would you take 40?", sender="Bob <bob@example.com>")
    before = (await app.providers.for_mailbox(mailbox).changes(mailbox, None)).cursor
    async with connected(app) as client:
        [email] = (await app.inbox.check(mailbox, query="subject:offer")).emails
        made = await client.call_tool(
            "create_draft",
            {"mailbox": mailbox, "subject": "", "body": "Let me check.", "reply_to_email_id": email.email_id},
        )
        assert not made.is_error, text_of(made)
        assert made.structured_content is not None
        draft = made.structured_content
        assert draft["to"] == ["Bob <bob@example.com>"] and draft["subject"] == "Re: Offer"
        assert draft["in_reply_to"] == original
        plain = await client.call_tool(
            "create_draft", {"mailbox": mailbox, "subject": "Plan", "body": "v1", "to": ["carol@example.com"]}
        )
        assert plain.structured_content is not None
        listed = await client.call_tool("list_drafts", {"mailbox": mailbox})
        assert listed.structured_content is not None
        assert [d["subject"] for d in listed.structured_content["drafts"]] == ["Plan", "Re: Offer"]

        changed = await client.call_tool(
            "update_draft", {"mailbox": mailbox, "draft_id": plain.structured_content["draft_id"], "body": "v2"}
        )
        assert changed.structured_content is not None
        assert changed.structured_content["body"].strip() == "v2"
        assert changed.structured_content["to"] == ["carol@example.com"]
        stored = await app.providers.for_mailbox(mailbox).draft(mailbox, draft["draft_id"])
        assert parse_email(stored.raw).references == (original,)

        # Drafts are not mail: not listed, not found, not news to the watcher.
        assert not (await app.inbox.search(mailbox, "check")).emails
        assert [e.subject for e in (await app.inbox.check(mailbox)).emails] == ["Offer"]
        assert not (await app.providers.for_mailbox(mailbox).changes(mailbox, before)).emails

        gone = await client.call_tool("delete_draft", {"mailbox": mailbox, "draft_id": draft["draft_id"]})
        assert not gone.is_error
        again = await client.call_tool("delete_draft", {"mailbox": mailbox, "draft_id": draft["draft_id"]})
        assert again.is_error and "list_drafts" in text_of(again)
        # Only drafts: an email id is no draft id.
        mail = await client.call_tool("delete_draft", {"mailbox": mailbox, "draft_id": email.email_id})
        assert mail.is_error
        assert (await app.inbox.read(mailbox, email.email_id, mark_read=False)).subject == "Offer"
        bad = await client.call_tool(
            "create_draft", {"mailbox": mailbox, "subject": "x\r\nBcc: eve@example.com", "body": "b"}
        )
        assert bad.is_error and "control character" in text_of(bad)
    kinds = [e.kind for e in (await app.mailboxes.state(mailbox)).audit]
    assert {"draft_created", "draft_updated", "draft_deleted"} <= set(kinds)


async def test_read_only_refuses_every_draft_change(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    draft = await app.drafts.create(mailbox, to=["carol@example.com"], subject="Kept", body="b")
    await app.mailboxes.set_mode(mailbox, "read_only", actor="ops", role="human")
    async with connected(app) as client:
        for tool, args in (
            ("create_draft", {"subject": "s", "body": "b"}),
            ("update_draft", {"draft_id": draft.draft_id, "body": "changed"}),
            ("delete_draft", {"draft_id": draft.draft_id}),
        ):
            answer = await client.call_tool(tool, {"mailbox": mailbox, **args})
            assert answer.is_error and "read_only" in text_of(answer), tool
        listed = await client.call_tool("list_drafts", {"mailbox": mailbox})
        assert listed.structured_content is not None
        assert [(d["subject"], d["draft_id"]) for d in listed.structured_content["drafts"]] == [
            ("Kept", draft.draft_id)
        ]
    assert (await app.drafts.get(mailbox, draft.draft_id)).body.strip() == "b"
