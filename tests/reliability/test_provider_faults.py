"""Provider faults through the whole send path (issue 8, items 1 and 4), with real peers.

An aiosmtpd sink and Dovecot: answers lost after DATA, bursts of 4xx, the SMTP server down.
Counted by Message-ID at the sink: a duplicate only ever in the connection-lost-after-DATA
window, with the same Message-ID, and none when the Sent folder holds the evidence.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.credentials import load_secrets
from tests.support.app import make_settings, unique_mailbox
from tests.support.peers.dovecot import Dovecot
from tests.support.peers.fixtures import IMAP_PASSWORD, dovecot, file_into_sent, smtp_imap_entry, smtp_peer
from tests.support.peers.smtp_sink import SmtpPeer
from tests.support.wait import eventually, wait_for_status
from workflows.models import Decision
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker

__all__ = ["dovecot", "smtp_peer"]  # fixtures


async def start_app(
    env: WorkflowEnvironment, tmp_path: Path, dovecot: Dovecot, smtp: SmtpPeer, **entry: object
) -> tuple[Mailgate, str]:
    address = unique_mailbox("rel")
    made = smtp_imap_entry(dovecot, smtp, address, **entry)
    settings = make_settings(env, tmp_path, mailboxes=[made])
    app = Mailgate.build(settings, env.client, load_secrets(settings))
    return app, address


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_IMAP_PASSWORD", IMAP_PASSWORD)


async def approved_sends(app: Mailgate, address: str, count: int, prefix: str = "n") -> list[str]:
    ids = []
    for n in range(count):
        sent = await app.sends.submit(mailbox=address, to=[f"p{n}@example.org"], subject=f"{prefix}{n}", body="x")
        await app.sends.decide(sent.send_id, Decision(decision="approve", approver="human"))
        ids.append(sent.send_id)
    return ids


@pytest.mark.parametrize("sent_check", [True, False])
async def test_answer_lost_after_data(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    dovecot: Dovecot,
    smtp_peer: SmtpPeer,
    password: None,
    sent_check: bool,
) -> None:
    # The server files Sent itself (like Gmail); three of five sends lose the answer to DATA.
    smtp_peer.sink.file_sent = file_into_sent(dovecot)
    smtp_peer.sink.fail("DATA", "drop", "drop", "drop")
    app, address = await start_app(
        temporal_env, tmp_path, dovecot, smtp_peer, server_files_sent=True, sent_check=sent_check
    )
    async with build_worker(
        temporal_env.client, app.settings.task_queue, app.providers, proof_key=proof_key(app.secrets.secret_key)
    ):
        await app.mailboxes.ensure(app.settings.mailboxes[0], created_by="tests")
        ids = await approved_sends(app, address, 5)
        states = [await wait_for_status(app, send_id, {"sent"}, timeout=60) for send_id in ids]
    await app.providers.aclose()
    received = smtp_peer.sink.ids()
    expected = {s.message_id for s in states}
    assert set(received) == expected  # nothing lost
    if sent_check:
        assert sorted(received) == sorted(expected)  # and nothing twice
    else:
        # Without the check the three lost answers are resent: duplicates, each with its own Message-ID.
        assert len(received) == 8
        assert {m for m in received if received.count(m) > 1} <= expected


async def test_bursts_of_4xx_and_smtp_down_then_one_delivery_each(
    temporal_env: WorkflowEnvironment, tmp_path: Path, dovecot: Dovecot, smtp_peer: SmtpPeer, password: None
) -> None:
    smtp_peer.sink.fail("RCPT", "421 4.7.0 busy", "451 4.7.1 greylisted")
    smtp_peer.sink.fail("DATA", "452 4.3.1 insufficient storage")
    app, address = await start_app(temporal_env, tmp_path, dovecot, smtp_peer)
    async with build_worker(
        temporal_env.client, app.settings.task_queue, app.providers, proof_key=proof_key(app.secrets.secret_key)
    ):
        await app.mailboxes.ensure(app.settings.mailboxes[0], created_by="tests")
        ids = await approved_sends(app, address, 3)

        async def some_error_shown() -> bool:
            for send_id in ids:
                state = await app.sends.status(send_id)
                if state.status == "sending" and "4" in state.last_error and "retrying" in state.last_error:
                    return True
            return False

        await eventually(some_error_shown, timeout=20)
        smtp_peer.stop()
        late = await approved_sends(app, address, 1, prefix="late")
        smtp_peer.start()
        states = [await wait_for_status(app, s, {"sent"}, timeout=90) for s in [*ids, *late]]
    await app.providers.aclose()
    assert sorted(smtp_peer.sink.ids()) == sorted(s.message_id for s in states)
