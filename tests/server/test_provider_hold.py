"""A send held by its provider (a gated MultiMail mailbox): the wait is bounded in history and time.

Polling happens inside one heartbeating activity, so the send's history does not grow with each
poll (it used to add about 11 events per poll, and allowed settings reached Temporal's limit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.credentials import load_secrets
from server.settings import MailboxEntry
from tests.support.app import make_settings, unique_mailbox
from tests.support.histories import keep_history
from tests.support.peers.multimail_fake import FakeServer
from tests.support.wait import eventually, wait_for_status
from workflows.send import SendEmailWorkflow
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker


@pytest.fixture
def multimail() -> Iterator[FakeServer]:
    running = FakeServer().start()
    yield running
    running.stop()


@pytest.fixture
def window_hours() -> float | None:
    return None


@pytest.fixture
async def held_app(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    multimail: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    window_hours: float | None,
) -> AsyncIterator[Mailgate]:
    """An autonomous mailbox on a MultiMail mailbox that MultiMail gates; polls every 0.1 s."""
    monkeypatch.setenv("TEST_MM_KEY", "mm_live_sender")
    address = unique_mailbox("mm")
    box = multimail.fake.add_mailbox(address, "gated_send")
    entry = MailboxEntry(
        address=address,
        provider="multimail",
        api_key_env="TEST_MM_KEY",
        multimail_mailbox_id=box,
        base_url=multimail.url,
        decision_poll_seconds=0.1,
        oversight_mode="autonomous",
        approval_window_hours=window_hours,
    )
    settings = make_settings(temporal_env, tmp_path, mailboxes=[entry], default_mailbox=address)
    app = Mailgate.build(settings, temporal_env.client, load_secrets(settings))
    async with build_worker(
        temporal_env.client, settings.task_queue, app.providers, proof_key=proof_key(load_secrets(settings).secret_key)
    ):
        await app.mailboxes.ensure(entry, created_by="tests")
        yield app
    await app.providers.aclose()


def reads(multimail: FakeServer) -> int:
    return sum(1 for method, _, _ in multimail.fake.requests if method == "GET")


async def held(app: Mailgate, multimail: FakeServer, subject: str) -> tuple[str, str]:
    sent = await app.sends.submit(
        mailbox=app.settings.default_mailbox, to=["carol@example.org"], subject=subject, body="x"
    )
    await eventually(lambda: any(e["status"] == "pending_send_approval" for e in multimail.fake.emails.values()))
    await wait_for_status(app, sent.send_id, {"pending_approval"})
    email = next(e for e in multimail.fake.emails.values() if e["tags"].get("mailgate_send_id") == sent.send_id)
    return sent.send_id, str(email["id"])


async def test_polling_a_held_send_does_not_grow_its_history(held_app: Mailgate, multimail: FakeServer) -> None:
    app = held_app
    send_id, email_id = await held(app, multimail, "Held a while")
    handle = app.client.get_workflow_handle(send_id)
    await asyncio.sleep(0.5)
    before, events = reads(multimail), len((await handle.fetch_history()).events)
    await asyncio.sleep(4)
    assert reads(multimail) - before >= 3  # it kept asking MultiMail...
    assert len((await handle.fetch_history()).events) == events  # ...and wrote nothing down
    await keep_history(app, send_id, "send-multimail-held-midwait")
    multimail.fake.decide(email_id, "approve", by="ops@example.com")
    state = await wait_for_status(app, send_id, {"sent"}, timeout=20)
    assert "ops@example.com" in state.reason
    await keep_history(app, send_id, "send-multimail-held-watched")


async def test_a_held_send_can_be_cancelled(held_app: Mailgate, multimail: FakeServer) -> None:
    app = held_app
    send_id, email_id = await held(app, multimail, "Withdraw")
    state = await app.sends.cancel(send_id, actor="agent")
    assert state.status == "cancelled"
    assert multimail.fake.emails[email_id]["status"] == "cancelled"
    await keep_history(app, send_id, "send-multimail-held-cancelled")


@pytest.mark.parametrize("window_hours", [2 / 3600])
async def test_a_held_send_expires_with_its_window_and_is_withdrawn(held_app: Mailgate, multimail: FakeServer) -> None:
    app = held_app
    send_id, email_id = await held(app, multimail, "Nobody decides")
    state = await wait_for_status(app, send_id, {"expired"}, timeout=30)
    assert "did not decide" in state.reason
    assert multimail.fake.emails[email_id]["status"] == "cancelled"
    await keep_history(app, send_id, "send-multimail-held-expired")


async def test_a_temporal_cancel_withdraws_a_held_send(held_app: Mailgate, multimail: FakeServer) -> None:
    app = held_app
    send_id, email_id = await held(app, multimail, "Withdrawn through Temporal")
    handle = app.client.get_workflow_handle_for(SendEmailWorkflow.run, send_id)
    await handle.cancel()
    state = await asyncio.wait_for(handle.result(), 20)
    assert state.status == "cancelled"
    assert multimail.fake.emails[email_id]["status"] == "cancelled"
    await keep_history(app, send_id, "send-multimail-held-temporal-cancel")


async def test_a_status_mailgate_does_not_know_is_shown_while_the_send_keeps_waiting(
    held_app: Mailgate, multimail: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A status MultiMail adds later (not in the document mailgate was built against) is no
    verdict: the send keeps waiting for MultiMail's human, and says what MultiMail reported."""
    app = held_app
    caplog.set_level(logging.WARNING, logger="mailgate.multimail")
    # From the first look on (a status that appears later shows within the heartbeat throttle, ~48 s).
    multimail.fake.held_status = "pending_legal_review"
    sent = await app.sends.submit(mailbox=app.settings.default_mailbox, to=["c@example.org"], subject="New", body="x")
    send_id = sent.send_id

    async def shown() -> bool:
        return "pending_legal_review" in (await app.sends.status(send_id)).last_error

    await eventually(shown)
    state = await app.sends.status(send_id)
    assert state.status == "pending_approval"
    assert "does not know" in state.last_error and "keeps waiting" in state.last_error
    [email_id] = [e["id"] for e in multimail.fake.emails.values() if e["tags"].get("mailgate_send_id") == send_id]
    assert any("pending_legal_review" in r.getMessage() and email_id in r.getMessage() for r in caplog.records)
    # The contract server saw its own answer drift from the document: that is this test's premise.
    assert multimail.fake.violations and all("pending_legal_review" in v for v in multimail.fake.violations)
    multimail.fake.violations.clear()

    multimail.fake.emails[email_id]["status"] = "pending_send_approval"
    multimail.fake.decide(email_id, "approve", by="ops@example.com")
    assert (await wait_for_status(app, send_id, {"sent"}, timeout=20)).last_error == ""
