"""Graduated trust: tighten-only agents, upgrade codes, policies, reviews and the audit log."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from mcp import Client

from server.app import Mailgate
from server.audit import audit_log
from server.errors import Conflict
from server.mcp_server import build_mcp
from server.validation import PolicyChanges, parse_edits
from tests.support.wait import wait_for_status
from workflows.models import Decision


@contextlib.asynccontextmanager
async def connected(app: Mailgate) -> AsyncIterator[Client]:
    async with Client(build_mcp(app)) as client:
        yield client


def text(result: object) -> str:
    return str(result.content[0].text)  # type: ignore[attr-defined]


async def mode_of(app: Mailgate) -> str:
    return (await app.mailboxes.state(app.settings.default_mailbox)).config.mode


async def test_the_agent_tightens_but_cannot_loosen(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    async with connected(app) as client:
        tightened = await client.call_tool("set_oversight_mode", {"mailbox": mailbox, "mode": "gated_all"})
        assert not tightened.is_error
        loosened = await client.call_tool("set_oversight_mode", {"mailbox": mailbox, "mode": "autonomous"})
        assert loosened.is_error
        assert "request_upgrade" in text(loosened)
    assert await mode_of(app) == "gated_all"


async def test_upgrade_codes_are_single_use_and_right_only_for_their_mailbox(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    other = "other-" + mailbox
    await app.mailboxes.create(other, created_by="tests")
    async with connected(app) as client:
        asked = await client.call_tool(
            "request_upgrade", {"mailbox": mailbox, "mode": "monitored", "reason": "weekly reports"}
        )
        assert not asked.is_error
        assert "code" not in (asked.structured_content or {})  # the agent never sees it
        await client.call_tool("request_upgrade", {"mailbox": other, "mode": "autonomous", "reason": "x"})
        codes = {u.mailbox: u.code for u in await app.mailboxes.upgrades()}

        wrong = await client.call_tool("apply_upgrade", {"mailbox": mailbox, "code": "AAAAAAAA"})
        assert wrong.is_error and "wrong or expired" in text(wrong)
        crossed = await client.call_tool("apply_upgrade", {"mailbox": mailbox, "code": codes[other]})
        assert crossed.is_error
        assert await mode_of(app) == "gated_send"

        applied = await client.call_tool("apply_upgrade", {"mailbox": mailbox, "code": codes[mailbox].lower()})
        assert not applied.is_error, text(applied)
        assert await mode_of(app) == "monitored"

        await app.mailboxes.set_mode(mailbox, "gated_send", actor="ops", role="human")
        reused = await client.call_tool("apply_upgrade", {"mailbox": mailbox, "code": codes[mailbox]})
        assert reused.is_error
        assert await mode_of(app) == "gated_send"
    statuses = {u.request.request_id: u.request.status for u in await app.mailboxes.upgrades(mailbox)}
    assert list(statuses.values()) == ["applied"]


async def test_five_wrong_codes_void_the_request(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    upgrade = await app.mailboxes.request_upgrade(mailbox, "autonomous", "bulk send", requested_by="agent")
    for _ in range(5):
        with pytest.raises(Conflict, match="wrong or expired"):
            await app.mailboxes.apply_upgrade(mailbox, "WRONG234", actor="agent")
    with pytest.raises(Conflict):
        await app.mailboxes.apply_upgrade(mailbox, upgrade.code, actor="agent")
    assert await mode_of(app) == "gated_send"
    [voided] = await app.mailboxes.upgrades(mailbox)
    assert (voided.request.status, voided.request.wrong_tries) == ("void", 5)
    assert voided.code == ""  # a void request's code is shown to nobody


async def test_an_upgrade_must_be_looser(app: Mailgate) -> None:
    with pytest.raises(Conflict, match="not looser"):
        await app.mailboxes.request_upgrade(app.settings.default_mailbox, "read_only", "x", requested_by="agent")


async def test_deny_and_allow_lists_block_with_a_reason(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.configure(
        mailbox, PolicyChanges(allow=["example.com", "*.partner.org"], deny=["ceo@example.com"]), actor="ops"
    )
    denied = await app.sends.submit(mailbox=mailbox, to=["ceo@example.com"], subject="s", body="b")
    assert denied.status == "blocked"
    assert "deny-list" in denied.reason
    outside = await app.sends.submit(
        mailbox=mailbox, to=["a@example.com"], bcc=["x@evil-example.com"], subject="s", body="b"
    )
    assert outside.status == "blocked"
    assert "x@evil-example.com" in outside.reason
    inside = await app.sends.submit(mailbox=mailbox, to=["a@example.com", "b@eu.partner.org"], subject="s", body="b")
    assert inside.status == "pending_approval"
    assert (await wait_for_status(app, denied.send_id, ["blocked"])).reason == denied.reason


async def test_recipients_added_by_an_approvers_edit_are_checked_too(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.configure(mailbox, PolicyChanges(deny=["evil.com"]), actor="ops")
    result = await app.sends.submit(mailbox=mailbox, to=["a@example.com"], subject="s", body="b")
    edits = parse_edits(to=["a@example.com"], cc=["boss@evil.com"])
    await app.sends.decide(result.send_id, Decision(decision="approve", approver="alice", edits=edits))
    state = await wait_for_status(app, result.send_id, ["blocked"])
    assert "boss@evil.com" in state.reason
    assert app.sandbox.deliveries(mailbox) == []


async def test_a_burst_of_ten_times_the_rate_limit_delivers_exactly_the_limit(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.configure(mailbox, PolicyChanges(rate_per_hour=3), actor="ops")
    await app.mailboxes.set_mode(mailbox, "autonomous", actor="ops", role="human")
    results = await asyncio.gather(
        *(app.sends.submit(mailbox=mailbox, to=["b@example.com"], subject=f"burst {i}", body="b") for i in range(30))
    )
    finals = [await wait_for_status(app, r.send_id, ["sent", "blocked"]) for r in results]
    assert sum(s.status == "sent" for s in finals) == 3
    blocked = [s for s in finals if s.status == "blocked"]
    assert len(blocked) == 27
    assert all("rate limit reached: 3 sends per hour" in s.reason and "allowed after" in s.reason for s in blocked)
    assert len(app.sandbox.deliveries(mailbox)) == 3


async def test_only_listed_approvers_may_decide(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.configure(mailbox, PolicyChanges(approvers=["alice"]), actor="ops")
    await asyncio.sleep(1.1)  # the submit path reads mailbox settings through a one-second cache
    result = await app.sends.submit(mailbox=mailbox, to=["b@example.com"], subject="s", body="b")
    with pytest.raises(Conflict, match="not an approver"):
        await app.sends.decide(result.send_id, Decision(decision="approve", approver="mallory"))
    state = await app.sends.decide(result.send_id, Decision(decision="approve", approver="Alice"))
    assert state.decision is not None and state.decision.approver == "Alice"


async def test_loosening_does_not_release_pending_sends(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    result = await app.sends.submit(mailbox=mailbox, to=["b@example.com"], subject="s", body="b")
    await app.mailboxes.set_mode(mailbox, "autonomous", actor="ops", role="human")
    await asyncio.sleep(1.0)
    assert (await app.sends.status(result.send_id)).status == "pending_approval"
    assert app.sandbox.deliveries(mailbox) == []
    await app.sends.decide(result.send_id, Decision(decision="approve", approver="ops"))
    await wait_for_status(app, result.send_id, ["sent"])


async def test_a_mailbox_tightened_to_gated_makes_an_immediate_send_wait(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.set_mode(mailbox, "monitored", actor="ops", role="human")
    # The front door still believes "monitored" (it read the mailbox just before the change landed,
    # against the record as it is now); the mailbox itself decides at delivery.
    await app.mailboxes.set_mode(mailbox, "gated_all", actor="agent", role="agent")
    stale = (await app.mailboxes.state(mailbox)).config.model_copy(update={"mode": "monitored"})
    app.mailboxes._cache[mailbox] = (time.monotonic(), app.mailboxes._ledger.mailbox_config(mailbox), stale)
    result = await app.sends.submit(mailbox=mailbox, to=["b@example.com"], subject="s", body="b")
    assert result.status == "sending"
    state = await wait_for_status(app, result.send_id, ["pending_approval"])
    assert state.oversight_mode == "gated_all"
    assert app.sandbox.deliveries(mailbox) == []


async def test_the_promotion_story_end_to_end_with_its_audit_log(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    async with connected(app) as client:
        gated = await client.call_tool(
            "durable_send", {"mailbox": mailbox, "to": ["b@example.com"], "subject": "first", "body": "b"}
        )
        assert gated.structured_content is not None
        assert gated.structured_content["status"] == "pending_approval"
        await asyncio.sleep(0.5)
        assert app.sandbox.deliveries(mailbox) == []

        await app.mailboxes.set_mode(mailbox, "monitored", actor="alice", role="human", reason="trusted now")
        await asyncio.sleep(1.1)  # past the front door's one-second settings cache
        monitored = await client.call_tool(
            "durable_send", {"mailbox": mailbox, "to": ["b@example.com"], "subject": "second", "body": "b"}
        )
        assert monitored.structured_content is not None
        assert monitored.structured_content["status"] == "sending"
        send_id = monitored.structured_content["send_id"]
        await wait_for_status(app, send_id, ["sent"])
        assert [r.send_id for r in await app.mailboxes.reviews(mailbox)] == [send_id]
        review = await app.ack_review(send_id, "bob")
        assert review.acked_by == "bob"
        assert await app.mailboxes.reviews(mailbox) == []

        tightened = await client.call_tool("set_oversight_mode", {"mailbox": mailbox, "mode": "gated_all"})
        assert not tightened.is_error

        log = await client.call_tool("get_audit_log", {"mailbox": mailbox})
        assert log.structured_content is not None
        events = log.structured_content["events"]
        kinds = [(e["kind"], e["actor"]) for e in events]
        assert ("mode_changed", "alice") in kinds
        assert ("mode_changed", "default") in kinds  # the built-in agent's name
        assert ("review_acked", "bob") in kinds
        assert ("sent", "mailgate") in kinds
        assert kinds.count(("requested", "default")) == 2
        times = [e["at"] for e in events]
        assert times == sorted(times, reverse=True)


async def test_the_audit_log_pages_without_gaps_or_repeats(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    for i in range(4):
        result = await app.sends.submit(mailbox=mailbox, to=["b@example.com"], subject=f"s{i}", body="b")
        await app.sends.decide(result.send_id, Decision(decision="reject", approver="ops", reason="no"))

    everything = await audit_log(app.mailboxes, app.sends, mailbox=mailbox, limit=200)
    seen = []
    cursor = None
    while True:
        page = await audit_log(app.mailboxes, app.sends, mailbox=mailbox, limit=3, cursor=cursor)
        seen += page.events
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == everything.events
    assert len(everything.events) >= 4 * 3


async def test_a_mailboxs_approval_window_sets_when_its_sends_expire(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.configure(mailbox, PolicyChanges(approval_window_hours=2), actor="ops")
    before = datetime.now(UTC)
    sent = await app.sends.submit(mailbox=mailbox, to=["bob@example.com"], subject="Window", body="b")
    assert sent.expires_at is not None
    assert timedelta(hours=2) <= sent.expires_at - before < timedelta(hours=2, minutes=1)
    # A window given with the send wins over the mailbox's.
    own = await app.sends.submit(
        mailbox=mailbox, to=["bob@example.com"], subject="Own window", body="b", approval_timeout_hours=0.5
    )
    assert own.expires_at is not None
    assert timedelta(minutes=30) <= own.expires_at - before < timedelta(minutes=31)
    state = await wait_for_status(app, sent.send_id, ["pending_approval"])
    assert state.expires_at is not None and abs(state.expires_at - sent.expires_at) < timedelta(seconds=5)
