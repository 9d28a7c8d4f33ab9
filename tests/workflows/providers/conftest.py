"""Real mail peers (Dovecot, aiosmtpd) for the provider tests."""

from tests.support.peers.fixtures import dovecot, provider, smtp_peer

__all__ = ["dovecot", "provider", "smtp_peer"]
