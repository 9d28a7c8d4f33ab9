"""Real mail peers (Dovecot, aiosmtpd) and MultiMail's contract server for the provider tests."""

from collections.abc import Iterator

import pytest

from tests.support.peers.fixtures import dovecot, provider, smtp_peer
from tests.support.peers.multimail_fake import FakeServer

__all__ = ["dovecot", "provider", "smtp_peer"]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """MultiMail's contract server; a request or answer that drifts from its OpenAPI document fails the test."""
    running = FakeServer().start()
    yield running
    running.stop()
    assert running.fake.violations == []
