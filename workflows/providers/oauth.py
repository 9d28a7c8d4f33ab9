"""OAuth 2.0 for SMTP and IMAP (SASL OAUTHBEARER or XOAUTH2): the providers' endpoints, the grant kept encrypted
at rest in the data dir, and access tokens refreshed before they expire.

The refresh token lives only in ``<data dir>/oauth/<mailbox key>.grant``: AES-GCM with a key
derived from the server's secret key, the file 0600. It never enters a workflow's arguments,
results or history; the processes that send and read (serve, worker) load it from the data dir.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from workflows.ids import mailbox_key
from workflows.models import Frozen
from workflows.store import Database, Tx, migrate

OAuthProvider = Literal["google", "microsoft", "custom"]
REFRESH_MARGIN = 120.0  # seconds before expiry when an access token is renewed


class OAuthEndpoints(Frozen):
    authorize_url: str
    token_url: str
    device_url: str | None = None
    scopes: tuple[str, ...] = ()
    # RFC 7009 token revocation, used by `mailgate auth logout`; Microsoft has none for clients.
    revocation_url: str | None = None


GOOGLE = OAuthEndpoints(
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - a URL, not a secret
    device_url="https://oauth2.googleapis.com/device/code",
    revocation_url="https://oauth2.googleapis.com/revoke",
    scopes=("https://mail.google.com/",),
)


def microsoft(tenant: str = "common") -> OAuthEndpoints:
    base = f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
    return OAuthEndpoints(
        authorize_url=f"{base}/authorize",
        token_url=f"{base}/token",
        device_url=f"{base}/devicecode",
        scopes=(
            "https://outlook.office.com/SMTP.Send",
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "offline_access",
        ),
    )


class OAuthClient(Frozen):
    """A mailbox's OAuth client registration; the secret (if any) is handed over apart."""

    address: str
    client_id: str
    endpoints: OAuthEndpoints


class ReauthNeeded(RuntimeError):
    """No usable grant: a human must log in again."""

    def __init__(self, address: str, why: str) -> None:
        super().__init__(f"OAuth for {address}: {why}; re-run `mailgate auth login {address}`")


class OAuthError(RuntimeError):
    """The authorization server could not be asked (down, or an unexpected answer)."""


@dataclass
class Grant:
    refresh_token: str
    access_token: str = ""
    expires_at: float = 0.0
    scope: str = ""
    obtained_at: float = 0.0
    # Set when the server refused the refresh token for good (revoked): every process, and
    # `mailgate auth status`, then says so until the next login replaces the grant.
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _key(secret_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"mailgate oauth grants").derive(secret_key)


def _grants_table(tx: Tx) -> None:
    blob = "BYTEA" if tx.dialect == "postgresql" else "BLOB"
    tx.execute(f"CREATE TABLE IF NOT EXISTS grants (address TEXT PRIMARY KEY, blob {blob} NOT NULL)")


class GrantStore:
    """Grants, encrypted and bound to their mailbox's address: one file per mailbox in the data
    dir, or (``db``: the shared database of a deployment) one row each, so that every worker and
    front door refreshes and uses the same grant."""

    def __init__(self, data_dir: Path, secret_key: bytes, db: Database | None = None) -> None:
        self.directory = data_dir / "oauth"
        self._aead = AESGCM(_key(secret_key))
        self._db = db
        if db is not None:
            migrate(db, "grants", [_grants_table])

    def _read(self, address: str) -> bytes | None:
        if self._db is not None:
            rows = self._db.query("SELECT blob FROM grants WHERE address = ?", (address.lower(),))
            return bytes(rows[0][0]) if rows else None
        try:
            return self.path(address).read_bytes()
        except FileNotFoundError:
            return None

    def path(self, address: str) -> Path:
        return self.directory / f"{mailbox_key(address)}.grant"

    def load(self, address: str) -> Grant | None:
        blob = self._read(address)
        if blob is None:
            return None
        try:
            plain = self._aead.decrypt(blob[:12], blob[12:], address.lower().encode())
        except InvalidTag as exc:
            raise ReauthNeeded(address, "the stored grant cannot be decrypted (was the secret key changed?)") from exc
        return Grant(**json.loads(plain))

    def save(self, address: str, grant: Grant) -> None:
        nonce = secrets.token_bytes(12)
        blob = nonce + self._aead.encrypt(nonce, json.dumps(grant.to_json()).encode(), address.lower().encode())
        if self._db is not None:
            with self._db.transaction() as tx:
                tx.execute(
                    "INSERT INTO grants VALUES (?, ?) ON CONFLICT (address) DO UPDATE SET blob = excluded.blob",
                    (address.lower(), blob),
                )
            return
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.path(address)
        temporary = target.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
        os.replace(temporary, target)

    def forget(self, address: str) -> bool:
        if self._db is not None:
            with self._db.transaction() as tx:
                return tx.execute("DELETE FROM grants WHERE address = ?", (address.lower(),)).rowcount > 0
        try:
            self.path(address).unlink()
        except FileNotFoundError:
            return False
        return True


def grant_from(answer: dict[str, Any], previous: Grant | None = None) -> Grant:
    """A token endpoint's answer as a grant; a server that rotates no refresh token keeps the old one."""
    refresh = str(answer.get("refresh_token") or (previous.refresh_token if previous else ""))
    now = time.time()
    return Grant(
        refresh_token=refresh,
        access_token=str(answer["access_token"]),
        expires_at=now + float(answer.get("expires_in") or 3600),
        scope=str(answer.get("scope") or (previous.scope if previous else "")),
        obtained_at=now,
    )


async def token_request(client: OAuthClient, secret: str, form: dict[str, str]) -> dict[str, Any]:
    """POST to the token endpoint; the answer's JSON (an OAuth error answer included)."""
    data = {**form, "client_id": client.client_id}
    if secret:
        data["client_secret"] = secret
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(client.endpoints.token_url, data=data, headers={"Accept": "application/json"})
        answer: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OAuthError(f"the token endpoint {client.endpoints.token_url} did not answer: {exc}") from exc
    if not isinstance(answer, dict):
        raise OAuthError(f"the token endpoint {client.endpoints.token_url} answered {response.status_code}")
    return answer


class OAuthTokens:
    """Access tokens for one mailbox: cached, renewed before expiry, and renewed once more when a
    server refuses one (it may have been revoked early). No grant, or a refused refresh, raises
    ReauthNeeded, whose message tells the human what to run."""

    def __init__(self, client: OAuthClient, secret: str, store: GrantStore) -> None:
        self.client = client
        self._secret = secret
        self._store = store
        self._lock = asyncio.Lock()
        self._refused: str | None = None  # the access token a server refused

    def __repr__(self) -> str:  # never a token
        return f"OAuthTokens({self.client.address})"

    async def access_token(self) -> str:
        async with self._lock:
            grant = await asyncio.to_thread(self._store.load, self.client.address)
            if grant is None:
                raise ReauthNeeded(self.client.address, "not logged in")
            if grant.problem:
                raise ReauthNeeded(self.client.address, grant.problem)
            fresh = grant.expires_at - time.time() > REFRESH_MARGIN
            if grant.access_token and fresh and grant.access_token != self._refused:
                return grant.access_token
            return await self._refresh(grant)

    def refused(self, token: str) -> None:
        """A server refused this token: the next access_token() refreshes the grant."""
        self._refused = token

    async def _refresh(self, grant: Grant) -> str:
        address = self.client.address
        if not grant.refresh_token:
            raise ReauthNeeded(address, "the grant has no refresh token")
        answer = await token_request(
            self.client, self._secret, {"grant_type": "refresh_token", "refresh_token": grant.refresh_token}
        )
        if "access_token" not in answer:
            error = answer.get("error", "no access token")
            if error in ("invalid_grant", "invalid_client", "unauthorized_client"):
                grant.problem = f"the authorization server refused the refresh ({error}: revoked or expired)"
                await asyncio.to_thread(self._store.save, address, grant)
                raise ReauthNeeded(address, grant.problem)
            raise OAuthError(f"refreshing the token for {address} failed: {error}")
        renewed = grant_from(answer, grant)
        await asyncio.to_thread(self._store.save, address, renewed)
        self._refused = None
        return renewed.access_token


def xoauth2(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response, base64."""
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode("ascii")


def oauthbearer(user: str, host: str, port: int, token: str) -> str:
    """The SASL OAUTHBEARER initial response (RFC 7628 section 3.1), base64: a GS2 header naming
    the user (``,`` and ``=`` escaped as RFC 5801 says), then host, port and the bearer token."""
    name = user.replace("=", "=3D").replace(",", "=2C")
    text = f"n,a={name},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(text.encode()).decode("ascii")


# After a failed OAUTHBEARER exchange the server sends an error challenge; the client ends the
# exchange with a single %x01 (RFC 7628 section 3.2.3). XOAUTH2 takes an empty line instead.
OAUTHBEARER_DUMMY = base64.b64encode(b"\x01").decode("ascii")


def sasl_initial(mechanism: str, user: str, host: str, port: int, token: str) -> tuple[str, str]:
    """The initial response and the answer to an error challenge, for OAUTHBEARER or XOAUTH2."""
    if mechanism == "OAUTHBEARER":
        return oauthbearer(user, host, port, token), OAUTHBEARER_DUMMY
    return xoauth2(user, token), ""
