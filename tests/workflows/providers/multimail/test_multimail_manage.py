"""manage_email and drafts on the MultiMail provider, against the contract server (every request
and answer checked against MultiMail's OpenAPI document by the ``server`` fixture)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.peers.multimail import ADDRESS, provider_for
from tests.support.peers.multimail_fake import FakeServer
from workflows.providers.base import EmailNotFound
from workflows.providers.multimail.inbound import NOTICE_SUBJECT
from workflows.providers.multimail.manage import LOOKUP_PAGES
from workflows.providers.multimail.provider import MultiMailProvider
from workflows.trust.marks import NoticeMarks


class HoldAll:
    """mailgate's mode is gated_all: every new inbound email is held for a human."""

    async def holds(self, mailbox: str) -> bool:
        return True

    async def arrived(self, mailboxes: list[str], since: str | None = None) -> None:
        return None


def arrive(server: FakeServer, provider: MultiMailProvider, subject: str = "Invoice", **fields: Any) -> dict[str, Any]:
    return server.fake.add_email(
        provider.config.mailbox_id,
        "inbound",
        from_="carol@example.org",
        to=[ADDRESS],
        subject=subject,
        markdown="Please pay.",
        **fields,
    )


async def test_labels_are_tags_and_other_tags_stay(server: FakeServer) -> None:
    provider = provider_for(server)
    email = arrive(server, provider, tags={"priority": "high", "mailgate_send_id": "send-1"})
    assert await provider.manage(ADDRESS, email["id"], "label", "work", "agent") == "labelled work"
    assert email["tags"] == {"priority": "high", "mailgate_send_id": "send-1", "work": "true"}
    assert await provider.manage(ADDRESS, email["id"], "label", "work", "agent") == "already labelled work"
    # A label with "/" is one percent-encoded path segment when it is removed.
    assert await provider.manage(ADDRESS, email["id"], "label", "a/b", "agent") == "labelled a/b"
    assert await provider.manage(ADDRESS, email["id"], "unlabel", "a/b", "agent") == "label a/b removed"
    assert await provider.manage(ADDRESS, email["id"], "unlabel", "work", "agent") == "label work removed"
    assert await provider.manage(ADDRESS, email["id"], "unlabel", "work", "agent") == "had no label work"
    assert email["tags"] == {"priority": "high", "mailgate_send_id": "send-1"}
    # Looking the email up read no body: it is still unread at MultiMail.
    assert email["status"] == "unread"
    for action in ("label", "unlabel"):
        with pytest.raises(ValueError, match="mailgate's own"):
            await provider.manage(ADDRESS, email["id"], action, "mailgate_send_id", "agent")
    assert email["tags"] == {"priority": "high", "mailgate_send_id": "send-1"}
    await provider.aclose()


async def test_mark_read_reads_the_email(server: FakeServer) -> None:
    provider = provider_for(server)
    email = arrive(server, provider)
    assert await provider.manage(ADDRESS, email["id"], "mark_read", None, "agent") == "marked read"
    assert email["status"] == "read"
    assert await provider.manage(ADDRESS, email["id"], "mark_read", None, "agent") == "already read"
    await provider.aclose()


@pytest.mark.parametrize("action", ["archive", "move", "trash", "mark_unread"])
async def test_what_multimail_cannot_do_is_refused_without_asking_it(server: FakeServer, action: str) -> None:
    provider = provider_for(server)
    email = arrive(server, provider)
    asked = len(server.fake.requests)
    refusal = provider.unsupported(action)  # type: ignore[arg-type]
    assert refusal is not None and "MultiMail" in refusal and "action='label'" in refusal
    with pytest.raises(ValueError, match="action='label'"):
        await provider.manage(ADDRESS, email["id"], action, "Receipts" if action == "move" else None, "agent")  # type: ignore[arg-type]
    assert len(server.fake.requests) == asked and email["status"] == "unread"
    for supported in ("label", "unlabel", "mark_read"):
        assert provider.unsupported(supported) is None
    await provider.aclose()


async def test_held_mail_is_not_found_by_any_action(server: FakeServer) -> None:
    held_here = provider_for(server, hooks=HoldAll())
    mine = arrive(server, held_here, "Held by mailgate")
    held_there = arrive(server, held_here, "Held by MultiMail", status="pending_inbound_approval")
    for email in (mine, held_there):
        for action, target in (("label", "x"), ("unlabel", "x"), ("mark_read", None)):
            with pytest.raises(EmailNotFound):
                await held_here.manage(ADDRESS, email["id"], action, target, "agent")  # type: ignore[arg-type]
        assert email["tags"] == {} and email["status"] in ("unread", "pending_inbound_approval")
    # Released by a human, it is the agent's to tidy.
    await held_here.change_email(ADDRESS, mine["id"], "release", "ops")
    assert await held_here.manage(ADDRESS, mine["id"], "label", "x", "agent") == "labelled x"
    for unknown in ("em_99999999", "../x", ""):
        with pytest.raises(EmailNotFound):
            await held_here.manage(ADDRESS, unknown, "label", "x", "agent")
    await held_here.aclose()


async def test_an_old_email_is_read_to_be_found_and_the_answer_says_so(server: FakeServer) -> None:
    provider = provider_for(server)
    old = arrive(server, provider, "Old")
    for n in range(LOOKUP_PAGES * 100):
        arrive(server, provider, f"Newer {n}", status="read")
    assert await provider.manage(ADDRESS, old["id"], "label", "x", "agent") == (
        "labelled x (MultiMail marked it read when mailgate looked it up)"
    )
    assert old["tags"] == {"x": "true"} and old["status"] == "read"
    assert await provider.manage(ADDRESS, old["id"], "mark_read", None, "agent") == "already read"
    await provider.aclose()


async def test_multimail_keeps_no_drafts_and_says_what_to_do(server: FakeServer) -> None:
    provider = provider_for(server)
    with pytest.raises(ValueError, match=r"no drafts.*durable_send"):
        await provider.save_draft(ADDRESS, b"Subject: x\r\n\r\ny")
    assert await provider.drafts(ADDRESS) == []
    for call in (provider.draft, provider.delete_draft):
        with pytest.raises(EmailNotFound, match="no drafts"):
            await call(ADDRESS, "d1")
    assert server.fake.emails == {}
    await provider.aclose()


async def test_multimail_refusals_and_outages_are_answers_for_that_id(server: FakeServer) -> None:
    server.fake.keys["mm_live_reader"] = {"read"}
    reader = provider_for(server, key="mm_live_reader")
    email = arrive(server, reader)
    with pytest.raises(ValueError, match=r"MultiMail answered 403: .*send scope.*nothing changed"):
        await reader.manage(ADDRESS, email["id"], "label", "x", "agent")
    assert email["tags"] == {}
    server.fake.fail_next.append(503)
    with pytest.raises(ValueError, match="MultiMail answered 503"):
        await reader.manage(ADDRESS, email["id"], "mark_read", None, "agent")
    assert email["status"] == "unread"
    await reader.aclose()


async def test_a_label_or_id_of_dots_never_walks_up_the_api_path(server: FakeServer) -> None:
    """Attack: label an email '..', then unlabel it. Percent-encoding leaves '.' and '..' as they
    are, and HTTP clients resolve dot segments, so the DELETE of tag '..' went to the email itself
    (``DELETE /v1/mailboxes/{mb}/emails/{id}``) and an id '..' reached the mailbox's own URL."""
    provider = provider_for(server)
    email = arrive(server, provider, tags={"mailgate_send_id": "send-1"})
    for dots in (".", ".."):
        with pytest.raises(ValueError, match="cannot be"):
            await provider.manage(ADDRESS, email["id"], "label", dots, "agent")
        email["tags"][dots] = "true"  # set at MultiMail by other means: removing it stays on the tag path
        with pytest.raises(ValueError, match="cannot be"):
            await provider.manage(ADDRESS, email["id"], "unlabel", dots, "agent")
        with pytest.raises(EmailNotFound):
            await provider.manage(ADDRESS, dots, "mark_read", None, "agent")
    assert email["tags"] == {"mailgate_send_id": "send-1", ".": "true", "..": "true"}
    assert server.fake.violations == []  # before: DELETE .../emails/{id} and GET /v1/mailboxes/{mb}
    await provider.aclose()


@pytest.mark.parametrize(
    "label", ["Mailgate_send_id", "MAILGATE_SEND_ID", "\uff4dailgate_send_id", "mailgate\uff3fsend_id"]
)
async def test_mailgates_own_tags_are_refused_in_any_case_or_width(server: FakeServer, label: str) -> None:
    """A tag store that folds case or width (NFKC) would take these for mailgate_send_id."""
    provider = provider_for(server)
    email = arrive(server, provider, tags={"mailgate_send_id": "send-1"})
    for action in ("label", "unlabel"):
        with pytest.raises(ValueError, match="mailgate's own"):
            await provider.manage(ADDRESS, email["id"], action, label, "agent")
    assert email["tags"] == {"mailgate_send_id": "send-1"}
    await provider.aclose()


async def test_a_notice_in_the_mailbox_is_not_found_by_any_action(server: FakeServer) -> None:
    """A notice that went out through the agent's own MultiMail mailbox (no humans' channel):
    labelling or reading it would confirm what it says, so it is found by no action."""
    marks = NoticeMarks(b"k" * 32)
    provider = provider_for(server)
    marked = MultiMailProvider(provider.config, "mm_live_sender", marks=marks)
    notice = server.fake.add_email(
        provider.config.mailbox_id,
        "outbound",
        from_=ADDRESS,
        to=["olga@example.com"],
        subject=f"{NOTICE_SUBJECT} Approval needed: trash 11 emails",
        markdown=f"Approve: https://x/links/abc\n-- \n{marks.token('<n1@x>')}\n",
    )
    for action, target in (("label", "x"), ("unlabel", "x"), ("mark_read", None)):
        with pytest.raises(EmailNotFound):
            await marked.manage(ADDRESS, notice["id"], action, target, "agent")  # type: ignore[arg-type]
    assert notice["tags"] == {}
    await marked.aclose()
    await provider.aclose()


async def test_an_email_of_another_mailbox_of_the_account_is_not_found(server: FakeServer) -> None:
    """One API key reaches every mailbox of the account; mailgate asks only for this mailbox's."""
    provider = provider_for(server)
    other_box = server.fake.add_mailbox("other@example.multimail.dev", "autonomous")
    theirs = server.fake.add_email(other_box, "inbound", from_="c@example.org", to=["other@example.multimail.dev"])
    for action, target in (("label", "x"), ("unlabel", "x"), ("mark_read", None)):
        with pytest.raises(EmailNotFound):
            await provider.manage(ADDRESS, theirs["id"], action, target, "agent")  # type: ignore[arg-type]
    assert theirs["tags"] == {} and theirs["status"] == "unread"
    await provider.aclose()
