"""Dashboard sessions: a signed cookie after sign-in with the admin token, its CSRF token, and flashes.

The cookie carries the session's id, the signed-in name, the CSRF token, when it was issued and
when it was last used, signed with a key derived from the server's secret key *and* the admin
token, so rotating the admin token ends every session. A session ends after an idle time, after
an absolute lifetime, and at sign-out: sign-out records the session's id in a small revocation
store in the data dir (shared by every process of the machine), so a copy of the cookie taken
before sign-out is refused after it. The store only holds ids of sessions that could still be
valid; older rows are pruned.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.credentials import Secrets
from server.settings import Settings
from server.web.revoked import SharedRevokedSessions

SESSION_COOKIE = "mailgate_session"
SIGNIN_COOKIE = "mailgate_signin"
SESSION_SECONDS = 12 * 3600  # absolute: sign in again after this, however active
IDLE_SECONDS = 30 * 60  # a session unused this long has ended
TOUCH_SECONDS = 60  # refresh the cookie's last use at most this often
REVOKED_DB = "sessions.db"


@dataclass(frozen=True)
class Session:
    id: str
    name: str
    csrf: str
    issued: int
    seen: int
    # True when a person signed in with email and password: `name` is then their email, and
    # their roles decide what they see. False for the admin token (break glass, every mailbox).
    person: bool = False

    @property
    def expires(self) -> int:
        return min(self.issued + SESSION_SECONDS, self.seen + IDLE_SECONDS)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class RevokedSessions:
    """Ids of sessions ended by sign-out, each kept until the session would have expired anyway."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("CREATE TABLE IF NOT EXISTS revoked (id TEXT PRIMARY KEY, until INTEGER NOT NULL)")
        return db

    def revoke(self, session_id: str, until: int) -> None:
        db = self._connect()
        try:
            with db:
                db.execute("DELETE FROM revoked WHERE until < ?", (int(time.time()),))
                db.execute("INSERT OR REPLACE INTO revoked (id, until) VALUES (?, ?)", (session_id, until))
        finally:
            db.close()

    def is_revoked(self, session_id: str) -> bool:
        if not self.path.exists():
            return False
        db = self._connect()
        try:
            return db.execute("SELECT 1 FROM revoked WHERE id = ?", (session_id,)).fetchone() is not None
        finally:
            db.close()


class SessionCodec:
    def __init__(self, secrets_: Secrets, settings: Settings) -> None:
        self._key = hmac.new(
            secrets_.secret_key, b"mailgate dashboard sessions v2\x00" + secrets_.admin_token.encode(), hashlib.sha256
        ).digest()
        self._flash_key = hmac.new(secrets_.secret_key, b"mailgate flash messages v1", hashlib.sha256).digest()
        self._https = bool(settings.public_url and settings.public_url.startswith("https://"))
        self.revoked: RevokedSessions | SharedRevokedSessions = (
            SharedRevokedSessions(settings)
            if settings.database_url
            else RevokedSessions(settings.data_dir / REVOKED_DB)
        )

    @staticmethod
    def _seal(key: bytes, data: dict[str, Any]) -> str:
        payload = _b64(json.dumps(data, separators=(",", ":")).encode())
        return f"{payload}.{_b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())}"

    @staticmethod
    def _open(key: bytes, value: str) -> dict[str, Any] | None:
        payload, _, signature = value.partition(".")
        expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
        if not signature or not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        try:
            data = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return None
        return data if isinstance(data, dict) else None

    def issue(self, name: str, person: bool = False) -> tuple[str, Session]:
        now = int(time.time())
        session = Session(
            id=secrets.token_urlsafe(16), name=name, csrf=secrets.token_urlsafe(24), issued=now, seen=now, person=person
        )
        return self.encode(session), session

    def encode(self, session: Session) -> str:
        data: dict[str, Any] = {"i": session.id, "n": session.name, "c": session.csrf, "t": session.issued}
        data["s"] = session.seen
        if session.person:
            data["p"] = 1
        return self._seal(self._key, data)

    def read(self, request: Request) -> Session | None:
        data = self._open(self._key, request.cookies.get(SESSION_COOKIE, ""))
        if data is None:
            return None
        try:
            session = Session(
                id=str(data["i"]),
                name=str(data["n"]),
                csrf=str(data["c"]),
                issued=int(data["t"]),
                seen=int(data["s"]),
                person=data.get("p") == 1,
            )
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= time.time() or self.revoked.is_revoked(session.id):
            return None
        return session

    def touch(self, session: Session, request: Request, response: Response) -> None:
        """Move the idle deadline on: a fresh cookie with the same session, now as its last use."""
        now = int(time.time())
        if now - session.seen < TOUCH_SECONDS:
            return
        fresh = Session(session.id, session.name, session.csrf, session.issued, now, session.person)
        self.set_cookie(response, request, SESSION_COOKIE, self.encode(fresh), max_age=fresh.expires - now)

    def revoke(self, session: Session) -> None:
        self.revoked.revoke(session.id, session.issued + SESSION_SECONDS)

    def flash(self, kind: str, text: str) -> str:
        return self._seal(self._flash_key, {"kind": kind, "text": text, "at": int(time.time())})

    def read_flash(self, value: str) -> dict[str, str] | None:
        """A flash this server signed in the last minute; anything else (a page on another port
        that set the cookie, say) is ignored."""
        data = self._open(self._flash_key, value)
        if data is None or not isinstance(data.get("at"), int) or abs(time.time() - data["at"]) > 120:
            return None
        return {"kind": str(data.get("kind", "")), "text": str(data.get("text", ""))}

    def secure(self, request: Request) -> bool:
        """Secure cookies over TLS: served as https, or behind a proxy at an https public URL."""
        return self._https or request.url.scheme == "https"

    def set_cookie(self, response: Response, request: Request, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.secure(request),
        )


def csrf_matches(expected: str, given: object) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())
