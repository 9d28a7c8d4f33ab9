"""At most once through cancels and shutdowns, against Dovecot and the aiosmtpd sink.

A Temporal cancel or a stopping worker must neither cut an SMTP hand-over that began (the retry
would deliver a second copy) nor report a delivered email as failed.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from server.app import Mailgate
from server.connect import connect
from server.credentials import load_secrets
from server.settings import MailboxEntry
from tests.support.app import make_settings, process_env, unique_mailbox
from tests.support.histories import keep_history
from tests.support.peers.dovecot import Dovecot
from tests.support.peers.fixtures import IMAP_PASSWORD, IMAP_USER, dovecot, smtp_peer
from tests.support.peers.multimail_fake import FakeServer
from tests.support.peers.smtp_sink import SmtpPeer
from tests.support.proofs import TEST_PROOF_KEY, signed_notice
from tests.support.wait import eventually, wait_for_status
from workflows.activities.notify import NotifyActivities, NotifyConfig
from workflows.models import EmailAddress, EmailDraft
from workflows.notices import Notice
from workflows.providers.base import ProviderSet
from workflows.providers.endpoints import parse_endpoint, tls_context
from workflows.providers.fake import FakeProvider
from workflows.providers.multimail.account import MultiMailConfig
from workflows.providers.multimail.provider import MultiMailProvider
from workflows.providers.smtp_imap.smtp import SmtpServer
from workflows.send import SendEmailWorkflow
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker

__all__ = ["dovecot", "smtp_peer"]  # fixtures


def key_of(app: Mailgate) -> bytes:
    """The proof key of this app's front door (from its data dir): its workers check with it."""
    return proof_key(load_secrets(app.settings).secret_key)


def entry_for(address: str, dovecot: Dovecot, smtp: SmtpPeer) -> MailboxEntry:
    return MailboxEntry(
        address=address,
        provider="smtp_imap",
        smtp_url=f"smtp+starttls://{IMAP_USER}@127.0.0.1:{smtp.port}",
        imap_url=f"imaps://{IMAP_USER}@127.0.0.1:{dovecot.tls_port}",
        password_env="TEST_IMAP_PASSWORD",
        tls_ca_file=dovecot.ca_file,
        oversight_mode="autonomous",
    )


@pytest.fixture
async def smtp_app(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    dovecot: Dovecot,
    smtp_peer: SmtpPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Mailgate]:
    """The app with an autonomous SMTP/IMAP mailbox; tests run (and stop) their own workers."""
    monkeypatch.setenv("TEST_IMAP_PASSWORD", IMAP_PASSWORD)
    entry = entry_for(unique_mailbox("alice"), dovecot, smtp_peer)
    settings = make_settings(temporal_env, tmp_path, mailboxes=[entry], default_mailbox=entry.address)
    app = Mailgate.build(settings, temporal_env.client, load_secrets(settings))
    async with build_worker(temporal_env.client, settings.task_queue, app.providers, proof_key=key_of(app)):
        await app.mailboxes.ensure(entry, created_by="tests")
    yield app
    await app.providers.aclose()


async def submit(app: Mailgate, subject: str) -> str:
    sent = await app.sends.submit(
        mailbox=app.settings.default_mailbox, to=["carol@example.org"], subject=subject, body="x"
    )
    return sent.send_id


async def test_a_temporal_cancel_after_the_server_accepted_reports_sent(
    smtp_app: Mailgate, smtp_peer: SmtpPeer, temporal_env: WorkflowEnvironment
) -> None:
    app = smtp_app
    smtp_peer.sink.fail("DATA", "slow:4")
    async with build_worker(temporal_env.client, app.settings.task_queue, app.providers, proof_key=key_of(app)):
        send_id = await submit(app, "Accepted, then cancelled")
        await eventually(lambda: len(smtp_peer.sink.received) == 1, timeout=20)
        await temporal_env.client.get_workflow_handle(send_id).cancel()
        state = await wait_for_status(app, send_id, {"sent", "failed", "cancelled"}, timeout=30)
    assert state.status == "sent", state.reason
    assert smtp_peer.sink.ids() == [state.message_id]
    await keep_history(app, send_id, "send-temporal-cancel-after-acceptance")


async def test_a_temporal_cancel_before_the_server_accepted_reports_cancelled(
    smtp_app: Mailgate, smtp_peer: SmtpPeer, temporal_env: WorkflowEnvironment
) -> None:
    app = smtp_app
    smtp_peer.sink.fail("RCPT", *["451 4.3.0 try later"] * 20)
    async with build_worker(temporal_env.client, app.settings.task_queue, app.providers, proof_key=key_of(app)):
        send_id = await submit(app, "Refused for now, then cancelled")

        async def retrying() -> bool:
            return "451" in (await app.sends.status(send_id)).last_error

        await eventually(retrying, timeout=20)
        await temporal_env.client.get_workflow_handle(send_id).cancel()
        state = await wait_for_status(app, send_id, {"sent", "failed", "cancelled"}, timeout=30)
    assert state.status == "cancelled", state.reason
    assert smtp_peer.sink.received == []
    await keep_history(app, send_id, "send-temporal-cancel-before-acceptance")


async def test_a_worker_stopping_mid_data_lets_the_delivery_finish_once(
    smtp_app: Mailgate, smtp_peer: SmtpPeer, temporal_env: WorkflowEnvironment
) -> None:
    app = smtp_app
    smtp_peer.sink.fail("DATA", "slow:3")
    first = build_worker(temporal_env.client, app.settings.task_queue, app.providers, proof_key=key_of(app))
    async with first:
        send_id = await submit(app, "Shutdown during DATA")
        await eventually(lambda: len(smtp_peer.sink.received) == 1, timeout=20)
        # `async with` ends here: the worker shuts down while the server still owes its answer.
    async with build_worker(temporal_env.client, app.settings.task_queue, app.providers, proof_key=key_of(app)):
        state = await wait_for_status(app, send_id, {"sent", "failed", "cancelled"}, timeout=60)
    assert state.status == "sent", state.reason
    assert smtp_peer.sink.ids() == [state.message_id]
    await keep_history(app, send_id, "send-worker-stopped-mid-data")


async def test_a_notice_sent_again_after_a_crash_is_not_delivered_twice(
    smtp_app: Mailgate, smtp_peer: SmtpPeer, temporal_env: WorkflowEnvironment
) -> None:
    """email_notice retried after the server accepted (the worker died before reporting)."""
    app = smtp_app
    mailbox = app.settings.default_mailbox
    send_id = f"send-{uuid.uuid4().hex}"
    notice = signed_notice(
        Notice(
            notice_id=f"notify-{send_id}-approval-1",
            kind="approval_requested",
            mailbox=mailbox,
            at=datetime.now(UTC),
            send_id=send_id,
            requester="agent",
            draft=EmailDraft(to=(EmailAddress(address="carol@example.org"),), subject="Needs you", body="x"),
        )
    )
    activities = NotifyActivities(
        temporal_env.client, app.providers, NotifyConfig(base_url="http://mailgate.test"), TEST_PROOF_KEY
    )
    env = ActivityEnvironment()
    first = await env.run(activities.email_notice, notice, "approver@example.org")
    again = await env.run(activities.email_notice, notice, "approver@example.org")
    assert first == again
    assert smtp_peer.sink.ids() == [first]
    # Another approver of the same notice gets their own copy.
    other = await env.run(activities.email_notice, notice, "second@example.org")
    assert smtp_peer.sink.ids() == [first, other]


MARKER = "Okapi-Narwhal-4417"


@pytest.fixture
async def sealed_smtp_app(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    dovecot: Dovecot,
    smtp_peer: SmtpPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Mailgate]:
    """The SMTP/IMAP app with encryption keys: its client and worker seal payloads and failures."""
    monkeypatch.setenv("TEST_IMAP_PASSWORD", IMAP_PASSWORD)
    entry = entry_for(unique_mailbox("alice"), dovecot, smtp_peer)
    key = base64.b64encode(os.urandom(32)).decode()
    settings = make_settings(
        temporal_env,
        tmp_path,
        mailboxes=[entry],
        default_mailbox=entry.address,
        encryption_keys=SecretStr(f"main:{key}"),
    )
    client = await connect(settings)
    app = Mailgate.build(settings, client, load_secrets(settings))
    async with build_worker(client, settings.task_queue, app.providers, proof_key=key_of(app)):
        await app.mailboxes.ensure(entry, created_by="tests")
        yield app
    await app.providers.aclose()


async def test_failure_details_are_encrypted_in_history(
    sealed_smtp_app: Mailgate, smtp_peer: SmtpPeer, temporal_env: WorkflowEnvironment
) -> None:
    app = sealed_smtp_app
    recipient = f"{MARKER.lower()}@example.org"
    smtp_peer.sink.fail("RCPT", f"451 4.3.0 {MARKER} busy", f"550 5.1.1 {MARKER} no such user")
    sent = await app.sends.submit(mailbox=app.settings.default_mailbox, to=[recipient], subject="s", body="b")
    state = await wait_for_status(app, sent.send_id, {"failed"}, timeout=30)
    assert MARKER in state.reason  # mailgate, with the key, reads the provider's words

    # What Temporal stores (read by a client without the key): no recipient, no SMTP answer.
    history = await temporal_env.client.get_workflow_handle(sent.send_id).fetch_history()
    stored = b"".join(event.SerializeToString() for event in history.events)
    assert any(event.HasField("activity_task_failed_event_attributes") for event in history.events)
    assert MARKER.encode() not in stored
    assert MARKER.lower().encode() not in stored


async def test_a_notice_to_two_approvers_through_multimail_reaches_each_once(
    temporal_env: WorkflowEnvironment,
) -> None:
    """MultiMail de-duplicates by idempotency key: a notice's key is its per-recipient Message-ID
    (the notice id alone would fold the second approver's email into the first)."""
    server = FakeServer().start()
    try:
        address = unique_mailbox("mm")
        box = server.fake.add_mailbox(address, "autonomous")
        provider = MultiMailProvider(
            MultiMailConfig(address=address, mailbox_id=box, base_url=server.url), "mm_live_sender"
        )
        send_id = f"send-{uuid.uuid4().hex}"
        notice = signed_notice(
            Notice(
                notice_id=f"notify-{send_id}-approval-1",
                kind="approval_requested",
                mailbox=address,
                at=datetime.now(UTC),
                send_id=send_id,
                draft=EmailDraft(to=(EmailAddress(address="carol@example.org"),), subject="Needs you", body="x"),
            )
        )
        activities = NotifyActivities(
            temporal_env.client, ProviderSet(provider), NotifyConfig(base_url="http://x"), TEST_PROOF_KEY
        )
        env = ActivityEnvironment()
        for recipient in ("ann@example.org", "ann@example.org", "ben@example.org"):
            await env.run(activities.email_notice, notice, recipient)
        outbound = [e for e in server.fake.emails.values() if e["direction"] == "outbound"]
        assert sorted(str(e["to"]) for e in outbound) == sorted(
            str(t) for t in (["ann@example.org"], ["ben@example.org"])
        )
        await provider.aclose()
    finally:
        server.stop()


async def test_a_notice_retried_on_the_humans_smtp_channel_is_not_sent_twice(
    temporal_env: WorkflowEnvironment, dovecot: Dovecot, smtp_peer: SmtpPeer
) -> None:
    """Plain SMTP cannot be asked what it took: the first attempt heartbeats its receipt, and
    Temporal hands that to the retry (as after a worker crash before the attempt reported)."""
    channel = SmtpServer(
        parse_endpoint(f"smtp+starttls://{IMAP_USER}@127.0.0.1:{smtp_peer.port}", "smtp"),
        IMAP_PASSWORD,
        tls_context(dovecot.ca_file),
    )
    config = NotifyConfig(base_url="http://mailgate.test", channel=channel, from_address="notices@example.test")
    activities = NotifyActivities(temporal_env.client, ProviderSet(FakeProvider()), config, TEST_PROOF_KEY)
    send_id = f"send-{uuid.uuid4().hex}"
    notice = signed_notice(
        Notice(
            notice_id=f"notify-{send_id}-approval-1",
            kind="approval_requested",
            mailbox=unique_mailbox(),
            at=datetime.now(UTC),
            send_id=send_id,
            draft=EmailDraft(to=(EmailAddress(address="carol@example.org"),), subject="Needs you", body="x"),
        )
    )
    first = ActivityEnvironment()
    beats: list[object] = []
    first.on_heartbeat = lambda *details: beats.extend(details)
    sent = await first.run(activities.email_notice, notice, "chief@example.org")
    assert beats, "the receipt was not heartbeated"
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2, heartbeat_details=[beats[-1]])
    again = await retry.run(activities.email_notice, notice, "chief@example.org")
    assert again == sent
    assert smtp_peer.sink.ids() == [sent]


@pytest.mark.e2e
async def test_sigterm_to_mailgate_worker_mid_data_lets_the_delivery_finish_once(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    dovecot: Dovecot,
    smtp_peer: SmtpPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The `mailgate worker` process itself: SIGTERM while the SMTP server still owes its answer
    to DATA; the worker finishes the delivery before it exits, and the next worker sends nothing."""
    monkeypatch.setenv("TEST_IMAP_PASSWORD", IMAP_PASSWORD)
    entry = entry_for(unique_mailbox("alice"), dovecot, smtp_peer)
    config = tmp_path / "mailgate.toml"
    config.write_text(
        "[[mailboxes]]\n"
        + "".join(
            f"{key} = {json.dumps(str(value))}\n"
            for key, value in entry.model_dump(exclude_none=True, exclude_defaults=True).items()
        )
    )
    settings = make_settings(temporal_env, tmp_path, mailboxes=[entry], default_mailbox=entry.address)
    env = process_env(settings, MAILGATE_CONFIG=str(config), MAILGATE_DEFAULT_MAILBOX=entry.address)
    log = (tmp_path / "worker.log").open("ab")

    def worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], env=env, stdout=log, stderr=log)

    app = Mailgate.build(settings, temporal_env.client, load_secrets(settings))
    first = worker()
    try:
        await app.mailboxes.ensure(entry, created_by="tests")
        smtp_peer.sink.fail("DATA", "slow:3")
        send_id = await submit(app, "SIGTERM during DATA")
        await eventually(lambda: len(smtp_peer.sink.received) == 1, timeout=30)
        first.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(first.wait, 40) == 0
        second = worker()
        try:
            # The result, not a query: a query fails fast while the new worker is still starting.
            handle = app.client.get_workflow_handle_for(SendEmailWorkflow.run, send_id)
            state = await asyncio.wait_for(handle.result(), 120)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.to_thread(second.wait, 40)
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
        await app.providers.aclose()
    assert state.status == "sent", state.reason
    assert smtp_peer.sink.ids() == [state.message_id]
