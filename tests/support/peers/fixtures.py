"""Fixtures for tests with real mail peers: Dovecot (IMAP) and an aiosmtpd sink (SMTP).

Import them into a test module (``from tests.support.peers.fixtures import dovecot, smtp_peer``). Under
CI=true a missing Dovecot fails these tests instead of skipping them: .ci/run installs it.
"""

from __future__ import annotations

import imaplib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from server.settings import MailboxEntry
from tests.support.peers.dovecot import Dovecot, dovecot_available, start_dovecot
from tests.support.peers.smtp_sink import SmtpPeer
from workflows.providers.endpoints import parse_endpoint
from workflows.providers.smtp_imap.index import ImapIndex
from workflows.providers.smtp_imap.provider import SmtpImapProvider
from workflows.providers.smtp_imap.session import SmtpImapConfig

ADDRESS = "alice@example.test"
IMAP_USER = "alice"
IMAP_PASSWORD = "secret1"


def need_dovecot() -> None:
    if dovecot_available():
        return
    message = "Dovecot is not installed (apt-get install dovecot-imapd) or this is not root"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; under CI it is required")
    pytest.skip(message)


@pytest.fixture
def dovecot(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Dovecot]:
    """Parametrize it indirectly with ``{folder: attribute}`` for special-use folders by other names."""
    need_dovecot()
    special_use = getattr(request, "param", None)
    server = start_dovecot(tmp_path / "imap", {IMAP_USER: IMAP_PASSWORD, "bob": "secret2"}, special_use=special_use)
    yield server
    server.stop(graceful=False)


@pytest.fixture
def smtp_peer(tmp_path: Path, dovecot: Dovecot) -> Iterator[SmtpPeer]:
    """The SMTP sink, with Dovecot's certificate: one CA file (tls_ca_file) trusts both peers."""
    cert = (dovecot.ca_file, dovecot.ca_file.with_name("key.pem"))
    peer = SmtpPeer(tmp_path / "smtp", users={IMAP_USER: IMAP_PASSWORD}, cert=cert).start()
    yield peer
    peer.stop()


def imap_append(server: Dovecot, folder: str, raw: bytes, user: str = IMAP_USER, flags: str = "") -> None:
    """Deliver like an MTA would: straight into a folder, by another IMAP connection."""
    client = imaplib.IMAP4("127.0.0.1", server.port)
    try:
        client.login(user, server.users[user])
        client.create(folder)  # "already exists" is fine
        typ, data = client.append(folder, flags or None, None, raw)
        assert typ == "OK", data
    finally:
        client.logout()


def inbound(n: int, subject: str = "Hello", extra: str = "", message_id: str | None = None) -> bytes:
    """Message n from Carol to the IMAP mailbox, as raw bytes."""
    mid = message_id or f"<in-{n}@example.org>"
    return (
        f"From: Carol <carol@example.org>\r\nTo: {ADDRESS}\r\nSubject: {subject} {n}\r\n"
        f"Message-ID: {mid}\r\nDate: Mon, 30 Nov 2026 10:00:0{n % 10} +0000\r\n{extra}\r\nBody {n}\r\n"
    ).encode()


def file_into_sent(server: Dovecot, folder: str = "Sent") -> Callable[[bytes], None]:
    """A sink hook that files each accepted message in Sent, as Gmail and Outlook do."""

    def file(raw: bytes) -> None:
        imap_append(server, folder, raw, flags="\\Seen")

    return file


def smtp_imap_entry(dovecot: Dovecot, smtp: SmtpPeer, address: str = ADDRESS, **extra: object) -> MailboxEntry:
    """A configured smtp_imap mailbox on these peers (its password in TEST_IMAP_PASSWORD)."""
    return MailboxEntry(
        address=address,
        provider="smtp_imap",
        smtp_url=f"smtp+starttls://{IMAP_USER}@127.0.0.1:{smtp.port}",
        imap_url=f"imaps://{IMAP_USER}@127.0.0.1:{dovecot.tls_port}",
        password_env="TEST_IMAP_PASSWORD",
        tls_ca_file=dovecot.ca_file,
        **extra,
    )


def make_provider(
    server: Dovecot,
    smtp: SmtpPeer,
    directory: Path,
    *,
    tls: bool = True,
    **overrides: object,
) -> SmtpImapProvider:
    imap_url = (
        f"imaps://{IMAP_USER}@127.0.0.1:{server.tls_port}" if tls else f"imap://{IMAP_USER}@127.0.0.1:{server.port}"
    )
    smtp_url = smtp.url.replace("agent%40example.test", IMAP_USER)
    config = SmtpImapConfig(
        address=ADDRESS,
        smtp=parse_endpoint(smtp_url, "smtp"),
        imap=parse_endpoint(imap_url, "imap"),
        tls_ca_file=server.ca_file,
        **overrides,
    )
    index = ImapIndex(directory / f"index-{uuid.uuid4().hex[:8]}.db", ADDRESS)
    return SmtpImapProvider(config, IMAP_PASSWORD, index)


@pytest.fixture
async def provider(dovecot: Dovecot, smtp_peer: SmtpPeer, tmp_path: Path) -> AsyncIterator[SmtpImapProvider]:
    made = make_provider(dovecot, smtp_peer, tmp_path)
    yield made
    await made.aclose()
