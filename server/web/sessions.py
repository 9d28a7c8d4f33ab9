"""Dashboard sessions: a signed cookie after sign-in with the admin token, and its CSRF token.

Stateless, like the rest of the HTTP front: the cookie carries the signed-in name, its expiry
and the CSRF token, signed with a key derived from the server's secret key *and* the admin
token, so rotating the admin token ends every session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from server.credentials import Secrets
from server.settings import Settings

SESSION_COOKIE = "mailgate_session"
SIGNIN_COOKIE = "mailgate_signin"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    name: str
    csrf: str
    expires: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(self, secrets_: Secrets, settings: Settings) -> None:
        self._key = hmac.new(
            secrets_.secret_key, b"mailgate dashboard sessions v1\x00" + secrets_.admin_token.encode(), hashlib.sha256
        ).digest()
        self._https = bool(settings.public_url and settings.public_url.startswith("https://"))

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, name: str) -> tuple[str, Session]:
        session = Session(name=name, csrf=secrets.token_urlsafe(24), expires=int(time.time()) + SESSION_SECONDS)
        payload = _b64(json.dumps({"n": session.name, "c": session.csrf, "e": session.expires}).encode())
        return f"{payload}.{self._sign(payload)}", session

    def read(self, request: Request) -> Session | None:
        value = request.cookies.get(SESSION_COOKIE, "")
        payload, _, signature = value.partition(".")
        if not signature or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(name=str(data["n"]), csrf=str(data["c"]), expires=int(data["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return session if session.expires > time.time() else None

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
