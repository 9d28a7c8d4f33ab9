"""OAuth on the wire with real peers: OAUTHBEARER (RFC 7628) where the server offers it, XOAUTH2
otherwise, a refused token renewed once without waiting out a timeout, and a token that expires
while the IMAP IDLE connection waits: after the reconnect, new mail is still noticed."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.peers.dovecot import Dovecot, start_dovecot
from tests.support.peers.fixtures import imap_append, inbound, need_dovecot
from tests.support.peers.oauth_server import RS_SECRET, OAuthPeer
from tests.support.peers.smtp_sink import OAuthSink, SmtpPeer
from tests.support.wait import eventually
from workflows.providers.endpoints import parse_endpoint, tls_context
from workflows.providers.oauth import Grant, GrantStore, OAuthClient, OAuthEndpoints, OAuthTokens
from workflows.providers.smtp_imap.index import ImapIndex
from workflows.providers.smtp_imap.provider import SmtpImapProvider
from workflows.providers.smtp_imap.session import SmtpImapConfig
from workflows.providers.smtp_imap.smtp import SmtpServer, smtp_send
from workflows.read_models import EmailQuery

BOX = "alice@example.test"


@dataclass
class Peers:
    oauth: OAuthPeer
    directory: Path

    def imap(self, name: str, mechanisms: str) -> Dovecot:
        introspect = f"http://rs:{RS_SECRET}@127.0.0.1:{self.oauth.port}/introspect"
        return start_dovecot(
            self.directory / name, {BOX: "mta-only"}, oauth_introspection=introspect, oauth_mechanisms=mechanisms
        )

    def smtp(self, name: str, *, oauthbearer: bool) -> SmtpPeer:
        introspect = (f"{self.oauth.url}/introspect", RS_SECRET)
        return SmtpPeer(self.directory / name, security="plain", oauth_introspect=introspect, oauthbearer=oauthbearer)

    def tokens(self) -> OAuthTokens:
        """A logged-in grant (minted at the server, as a login would have), stored like mailgate does."""
        minted = self.oauth.mint()
        store = GrantStore(self.directory / "data", b"k" * 32)
        grant = Grant(
            refresh_token=minted.refresh_token,
            access_token=minted.access_token,
            expires_at=time.time() + minted.expires_in,
            obtained_at=time.time(),
        )
        store.save(BOX, grant)
        endpoints = OAuthEndpoints(
            authorize_url=f"{self.oauth.url}/authorize", token_url=f"{self.oauth.url}/token", scopes=("mail",)
        )
        return OAuthTokens(OAuthClient(address=BOX, client_id=self.oauth.client_id, endpoints=endpoints), "", store)

    def provider(self, imap: Dovecot, smtp: SmtpPeer, tokens: OAuthTokens, **extra: object) -> SmtpImapProvider:
        config = SmtpImapConfig(
            address=BOX,
            smtp=parse_endpoint(f"smtp://alice%40example.test@127.0.0.1:{smtp.port}", "smtp"),
            imap=parse_endpoint(f"imaps://alice%40example.test@127.0.0.1:{imap.tls_port}", "imap"),
            tls_ca_file=imap.ca_file,
            **extra,
        )
        index = ImapIndex(self.directory / f"index-{uuid.uuid4().hex[:8]}.db", BOX)
        return SmtpImapProvider(config, "", index, oauth=tokens)


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[Peers]:
    need_dovecot()
    oauth = OAuthPeer(BOX).start()
    try:
        yield Peers(oauth, tmp_path)
    finally:
        oauth.stop()


@contextlib.asynccontextmanager
async def running(*things: Dovecot | SmtpPeer) -> AsyncIterator[None]:
    for thing in things:
        if isinstance(thing, SmtpPeer):
            thing.start()
    try:
        yield
    finally:
        for thing in things:
            if isinstance(thing, SmtpPeer):
                thing.stop()
            else:
                thing.stop(graceful=False)


def _raw(subject: str) -> bytes:
    headers = f"From: {BOX}\r\nTo: carol@example.org\r\nSubject: {subject}\r\nMessage-ID: <{subject}@x>\r\n"
    return (headers + "\r\nhi\r\n").encode()


async def _send(smtp: SmtpPeer, tokens: OAuthTokens, subject: str) -> None:
    endpoint = parse_endpoint(f"smtp://alice%40example.test@127.0.0.1:{smtp.port}", "smtp")
    await smtp_send(
        SmtpServer(endpoint, "", tls_context(None), oauth=tokens), BOX, ["carol@example.org"], _raw(subject)
    )


async def test_oauthbearer_where_offered_else_xoauth2_and_a_refused_token_renewed_at_once(peers: Peers) -> None:
    tokens = peers.tokens()
    bearer_smtp, xoauth2_smtp = peers.smtp("smtp1", oauthbearer=True), peers.smtp("smtp2", oauthbearer=False)
    both, only_xoauth2 = peers.imap("imap1", "xoauth2 oauthbearer"), peers.imap("imap2", "xoauth2")
    async with running(bearer_smtp, xoauth2_smtp, both, only_xoauth2):
        await _send(bearer_smtp, tokens, "one")
        await _send(xoauth2_smtp, tokens, "two")
        assert isinstance(bearer_smtp.sink, OAuthSink) and isinstance(xoauth2_smtp.sink, OAuthSink)
        assert bearer_smtp.sink.mechanisms == ["OAUTHBEARER"] and xoauth2_smtp.sink.mechanisms == ["XOAUTH2"]
        for imap, method in ((both, "OAUTHBEARER"), (only_xoauth2, "XOAUTH2")):
            imap_append(imap, "INBOX", inbound(1), BOX)
            provider = peers.provider(imap, bearer_smtp, tokens)
            try:
                await provider.sync()
                assert len((await provider.list_emails(BOX, EmailQuery())).emails) == 1
            finally:
                await provider.aclose()
            assert f"method={method}, rip" in imap.log()

        # The server stops taking the token early: its error challenge is answered, the token
        # renewed and the login repeated, in well under a command timeout, on both protocols.
        for imap in (both, only_xoauth2):
            peers.oauth.expire_access_tokens()
            provider = peers.provider(imap, bearer_smtp, tokens)
            started = time.monotonic()
            try:
                await provider.sync()
            finally:
                await provider.aclose()
            assert time.monotonic() - started < 5
        before = len(list(peers.oauth.tokens()))
        peers.oauth.expire_access_tokens()
        await _send(bearer_smtp, tokens, "three")
        assert bearer_smtp.sink.mechanisms == ["OAUTHBEARER", "OAUTHBEARER"]
        assert len(list(peers.oauth.tokens())) == before + 1


async def test_a_token_expiring_mid_idle_is_renewed_and_new_mail_is_still_noticed(peers: Peers) -> None:
    arrived: list[list[str]] = []

    class Hooks:
        async def holds(self, mailbox: str) -> bool:
            return False

        async def arrived(self, mailboxes: list[str], since: str | None = None) -> None:
            arrived.append(mailboxes)

    tokens = peers.tokens()
    smtp, imap = peers.smtp("smtp", oauthbearer=True), peers.imap("imap", "xoauth2 oauthbearer")
    async with running(smtp, imap):
        provider = peers.provider(imap, smtp, tokens, reconnect_seconds=0.2)
        provider.hooks = Hooks()
        await provider.start()
        try:
            await asyncio.sleep(0.5)  # the IDLE connection is up
            imap_append(imap, "INBOX", inbound(1), BOX)
            await eventually(lambda: len(arrived) == 1, timeout=10)
            minted = len(list(peers.oauth.tokens()))

            # While IDLE waits, the access token expires at the server (mailgate's copy still looks
            # fresh), and the server drops every connection (a restart, an idle timeout).
            peers.oauth.expire_access_tokens()
            imap.doveadm("kick", BOX)
            imap_append(imap, "INBOX", inbound(2), BOX)
            await eventually(lambda: len(arrived) >= 2, timeout=20)
            subjects = {e.subject for e in (await provider.list_emails(BOX, EmailQuery())).emails}
            assert subjects == {"Hello 1", "Hello 2"}
            assert len(list(peers.oauth.tokens())) == minted + 1  # renewed once, not per retry
        finally:
            await provider.aclose()
