"""`mailgate auth login`: getting a mailbox's OAuth grant from a human, two ways.

- Authorization code with PKCE (RFC 7636) and a loopback redirect (RFC 8252): a one-shot HTTP
  listener on 127.0.0.1 takes the redirect; the browser is opened, or the URL printed.
- Device authorization (RFC 8628) for a server without a browser: the human enters a code
  on another device while this polls the token endpoint.

The grant is saved encrypted in the data dir (workflows/providers/oauth.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
import webbrowser
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from pydantic import BaseModel

from server.errors import InvalidInput
from server.settings import MailboxEntry, Settings
from workflows.providers.oauth import (
    Grant,
    GrantStore,
    OAuthError,
    OAuthTokens,
    ReauthNeeded,
    grant_from,
    token_request,
)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DONE_PAGE = b"<!doctype html><title>mailgate</title><p>mailgate is connected. You can close this window.</p>"


def oauth_entry(settings: Settings, address: str) -> MailboxEntry:
    for entry in settings.mailboxes:
        if entry.address.lower() == address.strip().lower():
            if entry.auth != "oauth2":
                raise InvalidInput(f"mailbox {entry.address} does not use OAuth (its entry has no auth = 'oauth2')")
            return entry
    raise InvalidInput(f"no mailbox {address} in the configuration file (MAILGATE_CONFIG) with auth = 'oauth2'")


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class _Redirect:
    """A one-shot loopback HTTP listener for the authorization server's redirect."""

    def __init__(self) -> None:
        self.query: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/callback"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            while (await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.decode("latin-1").split(" ")
            target = urlsplit(parts[1]) if len(parts) >= 2 else None
            if target is not None and target.path == "/callback" and not self.query.done():
                query = {k: v[0] for k, v in parse_qs(target.query).items()}
                self.query.set_result(query)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n" + DONE_PAGE)
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (TimeoutError, OSError, UnicodeDecodeError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def login_with_code(
    entry: MailboxEntry, store: GrantStore, announce: Callable[[str], None], *, browser: bool, timeout: float = 600
) -> Grant:
    client = entry.oauth_client()
    secret = entry.oauth_secret()
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(24)
    redirect = _Redirect()
    redirect_uri = await redirect.start()
    try:
        params = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(client.endpoints.scopes),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "login_hint": entry.address,
        }
        if entry.oauth_provider == "google":
            params |= {"access_type": "offline", "prompt": "consent"}  # Google gives a refresh token only so
        url = f"{client.endpoints.authorize_url}?{urlencode(params)}"
        announce(f"Open this URL to let mailgate use {entry.address}:\n{url}")
        if browser:
            webbrowser.open(url)
        try:
            query = await asyncio.wait_for(redirect.query, timeout)
        except TimeoutError as exc:
            raise OAuthError(f"no answer from the browser within {timeout:g} seconds") from exc
    finally:
        redirect.close()
    if not secrets.compare_digest(query.get("state", ""), state):
        raise OAuthError("the redirect carried the wrong state: not the login this command started")
    if "error" in query or "code" not in query:
        raise OAuthError(f"the login was refused: {query.get('error', 'no code')} {query.get('error_description', '')}")
    answer = await token_request(
        client,
        secret,
        {
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
    )
    return _save(entry, store, answer)


async def login_with_device(
    entry: MailboxEntry, store: GrantStore, announce: Callable[[str], None], *, timeout: float = 900
) -> Grant:
    client = entry.oauth_client()
    secret = entry.oauth_secret()
    if not client.endpoints.device_url:
        raise InvalidInput(f"mailbox {entry.address}: no device authorization endpoint (oauth_device_url)")
    data = {"client_id": client.client_id, "scope": " ".join(client.endpoints.scopes)}
    if secret:
        data["client_secret"] = secret
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(client.endpoints.device_url, data=data, headers={"Accept": "application/json"})
        start: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OAuthError(f"the device endpoint {client.endpoints.device_url} did not answer: {exc}") from exc
    if "device_code" not in start:
        raise OAuthError(f"the device endpoint refused: {start.get('error', response.status_code)}")
    where = start.get("verification_uri_complete") or start.get("verification_uri") or start.get("verification_url")
    announce(f"On any device, open {where} and enter the code {start.get('user_code', '')}")
    interval = float(start.get("interval") or 5)
    deadline = time.monotonic() + min(timeout, float(start.get("expires_in") or timeout))
    while time.monotonic() < deadline:
        await asyncio.sleep(interval)
        answer = await token_request(client, secret, {"grant_type": DEVICE_GRANT, "device_code": start["device_code"]})
        error = answer.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
            continue
        if error or "access_token" not in answer:
            raise OAuthError(f"the device login ended: {error or 'no access token'}")
        return _save(entry, store, answer)
    raise OAuthError("the device code expired before anyone entered it")


def _save(entry: MailboxEntry, store: GrantStore, answer: dict[str, Any]) -> Grant:
    if "access_token" not in answer:
        raise OAuthError(f"the token endpoint refused: {answer.get('error', 'no access token')}")
    grant = grant_from(answer)
    if not grant.refresh_token:
        raise OAuthError("the authorization server gave no refresh token (for Microsoft, include offline_access)")
    store.save(entry.address, grant)
    return grant


class AuthStatus(BaseModel):
    mailbox: str
    provider: str
    connected: bool
    expires_at: float | None = None
    state: str


async def status_of(entry: MailboxEntry, store: GrantStore) -> AuthStatus:
    """Whether the mailbox has a working grant: a token that is due is refreshed now, so a
    revoked grant shows here as it does in a send's last_error."""
    provider = entry.oauth_provider or "custom"
    try:
        grant = await asyncio.to_thread(store.load, entry.address)
    except ReauthNeeded as exc:
        return AuthStatus(mailbox=entry.address, provider=provider, connected=False, state=str(exc))
    if grant is None:
        return AuthStatus(
            mailbox=entry.address,
            provider=provider,
            connected=False,
            state=str(ReauthNeeded(entry.address, "not logged in")),
        )
    try:
        await OAuthTokens(entry.oauth_client(), entry.oauth_secret(), store).access_token()
    except (ReauthNeeded, OAuthError) as exc:
        return AuthStatus(mailbox=entry.address, provider=provider, connected=False, state=str(exc))
    grant = await asyncio.to_thread(store.load, entry.address)
    assert grant is not None
    return AuthStatus(
        mailbox=entry.address, provider=provider, connected=True, expires_at=grant.expires_at, state="connected"
    )
