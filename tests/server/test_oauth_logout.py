"""`mailgate auth logout` revokes the grant at the authorization server (RFC 7009) before it
forgets it; a failed revocation keeps the grant (and says how to go on); Microsoft, which has no
revocation endpoint for apps, is forgotten here with a note on where the human revokes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.oauth_logout import logout
from server.settings import MailboxEntry
from tests.support.peers.oauth_server import OAuthPeer
from tests.support.ports import free_port
from workflows.providers.oauth import Grant, GrantStore, OAuthError

BOX = "alice@example.test"


@pytest.fixture
def peer() -> Iterator[OAuthPeer]:
    oauth = OAuthPeer(BOX).start()
    yield oauth
    oauth.stop()


def entry(peer: OAuthPeer, **extra: object) -> MailboxEntry:
    fields: dict[str, object] = {
        "address": BOX,
        "provider": "smtp_imap",
        "smtp_url": "smtp://alice%40example.test@127.0.0.1:2525",
        "auth": "oauth2",
        "oauth_provider": "custom",
        "oauth_client_id": peer.client_id,
        "oauth_authorize_url": f"{peer.url}/authorize",
        "oauth_token_url": f"{peer.url}/token",
        "oauth_revocation_url": f"{peer.url}/revoke",
    }
    return MailboxEntry(**{**fields, **extra})


def logged_in(peer: OAuthPeer, tmp_path: Path) -> GrantStore:
    token = peer.mint()
    store = GrantStore(tmp_path, b"k" * 32)
    store.save(BOX, Grant(refresh_token=token.refresh_token, access_token=token.access_token, expires_at=time.time()))
    return store


async def test_logout_revokes_the_grant_at_the_server_then_forgets_it(peer: OAuthPeer, tmp_path: Path) -> None:
    store = logged_in(peer, tmp_path)
    said = await logout(entry(peer), store)
    assert said == f"{BOX}: grant revoked at {peer.url}/revoke and forgotten"
    assert [t.revoked for t in peer.tokens()] == [True]
    assert store.load(BOX) is None
    assert await logout(entry(peer), store) == f"{BOX}: was not logged in"


async def test_a_failed_revocation_keeps_the_grant_and_local_only_forgets_it(peer: OAuthPeer, tmp_path: Path) -> None:
    store = logged_in(peer, tmp_path)
    unreachable = entry(peer, oauth_revocation_url=f"http://127.0.0.1:{free_port()}/revoke")
    with pytest.raises(OAuthError, match="did not answer"):
        await logout(unreachable, store)
    assert store.load(BOX) is not None  # kept: the human can try again
    said = await logout(unreachable, store, local_only=True)
    assert "forgotten here only" in said and store.load(BOX) is None
    assert [t.revoked for t in peer.tokens()] == [False]


async def test_microsoft_is_forgotten_with_where_to_revoke_it(peer: OAuthPeer, tmp_path: Path) -> None:
    store = logged_in(peer, tmp_path)
    microsoft = MailboxEntry(
        address=BOX,
        provider="smtp_imap",
        smtp_url="smtp://alice%40example.test@127.0.0.1:2525",
        auth="oauth2",
        oauth_provider="microsoft",
        oauth_client_id="00000000-0000-0000-0000-000000000000",
    )
    said = await logout(microsoft, store)
    assert "no token revocation endpoint" in said and "myapps.microsoft.com" in said
    assert store.load(BOX) is None
    google = entry(peer, oauth_provider="google", oauth_authorize_url=None, oauth_token_url=None)
    assert google.oauth_client().endpoints.revocation_url == f"{peer.url}/revoke"  # the configured one wins
    assert entry(peer, oauth_provider="google", oauth_revocation_url=None).oauth_client().endpoints.revocation_url == (
        "https://oauth2.googleapis.com/revoke"
    )
