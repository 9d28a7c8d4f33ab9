"""Dashboard single sign-on with OpenID Connect (MAILGATE_OIDC_ISSUER, _CLIENT_ID, _CLIENT_SECRET).

Authorization code flow with PKCE (S256), ``state`` and ``nonce``: ``/signin/oidc`` sends the
browser to the issuer with a short-lived signed cookie holding what the answer must match, and
``/signin/oidc/callback`` trades the code for an ID token, checks it against the issuer's JWKS
(server/oidc.py), and signs in the person whose email the token carries. An email that is no
person here is refused: single sign-on says who someone is, `mailgate people` says what they may do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from server.oidc import TIMEOUT, Issuer, IssuerError, TokenError
from server.web.dashboard.auth import _local
from server.web.dashboard.common import SECURITY_HEADERS, Dashboard
from server.web.sessions import SESSION_COOKIE

log = logging.getLogger("mailgate.oidc")
FLOW_COOKIE = "mailgate_oidc"
FLOW_SECONDS = 600
CALLBACK = "/signin/oidc/callback"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FlowSeal:
    """What the callback must match, sealed into a cookie only this server can make."""

    def __init__(self, secret_key: bytes) -> None:
        self._key = hmac.new(secret_key, b"mailgate oidc flow v1", hashlib.sha256).digest()

    def seal(self, data: dict[str, Any]) -> str:
        payload = _b64(json.dumps({**data, "at": int(time.time())}, separators=(",", ":")).encode())
        return f"{payload}.{_b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())}"

    def open(self, value: str) -> dict[str, Any] | None:
        payload, _, signature = value.partition(".")
        expected = _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
        if not signature or not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        try:
            data = json.loads(_unb64(payload))
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("at"), int):
            return None
        return data if time.time() - data["at"] <= FLOW_SECONDS else None


def vouched_email(claims: dict[str, Any]) -> str | None:
    """The token's email if the provider says it verified it, else None.

    Only an explicit yes counts (some providers send the string "true"; a missing claim or
    "false" is no). ASCII only: Unicode lowercasing would turn another address into a person's
    here (KELVIN SIGN lowercases to "k"), and people's addresses are compared lowercased.
    """
    email, verified = claims.get("email"), claims.get("email_verified")
    if not isinstance(email, str) or not email or not email.isascii():
        return None
    if verified is True or (isinstance(verified, str) and verified.strip().lower() == "true"):
        return email
    return None


def routes(dash: Dashboard) -> list[Route]:
    settings = dash.app.settings
    if not settings.oidc_issuer or not settings.oidc_client_id:
        return []
    issuer = Issuer(settings.oidc_issuer)
    client_id = settings.oidc_client_id
    client_secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    flows = FlowSeal(dash.app.secrets.secret_key)

    def redirect_uri(request: Request) -> str:
        base = settings.public_url or str(request.base_url).rstrip("/")
        return base + CALLBACK

    def refused(request: Request, status: int, message: str) -> Response:
        response = dash.error(request, None, status, message)
        response.delete_cookie(FLOW_COOKIE, path="/signin/oidc")
        return response

    async def start(request: Request) -> Response:
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        try:
            authorize = await issuer.endpoint("authorization_endpoint")
        except IssuerError as exc:
            log.warning("single sign-on unavailable: %s", exc)
            return dash.error(request, None, 502, "Single sign-on is unavailable right now; try again later.")
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri(request),
            "scope": "openid email profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        sep = "&" if "?" in authorize else "?"
        location = f"{authorize}{sep}{urlencode(query)}"
        response = Response(status_code=303, headers={**SECURITY_HEADERS, "location": location})
        flow = flows.seal({"s": state, "n": nonce, "v": verifier, "x": _local(request.query_params.get("next", "/"))})
        # Lax, not Strict: the issuer sends the browser back here from another site.
        response.set_cookie(
            FLOW_COOKIE,
            flow,
            max_age=FLOW_SECONDS,
            path="/signin/oidc",
            httponly=True,
            samesite="lax",
            secure=dash.codec.secure(request),
        )
        return response

    async def exchange(request: Request, code: str, verifier: str) -> str:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri(request),
            "code_verifier": verifier,
            "client_id": client_id,
        }
        auth = httpx.BasicAuth(client_id, client_secret) if client_secret else None
        token_url = await issuer.endpoint("token_endpoint")
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as http:
                answer = await http.post(token_url, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as exc:
            raise IssuerError(f"{token_url} is unreachable: {exc!r}") from exc
        body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
        if answer.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
            raise TokenError(f"the issuer gave no ID token ({answer.status_code} {body.get('error', '')})".strip())
        return str(body["id_token"])

    async def callback(request: Request) -> Response:
        params = request.query_params
        flow = flows.open(request.cookies.get(FLOW_COOKIE, ""))
        if flow is None or not hmac.compare_digest(str(flow.get("s", "")).encode(), params.get("state", "").encode()):
            return refused(request, 400, "This sign-in expired or did not start here. Please sign in again.")
        if params.get("error"):
            return refused(request, 401, f"The identity provider refused the sign-in: {params['error'][:100]}.")
        try:
            id_token = await exchange(request, params.get("code", ""), str(flow["v"]))
            claims = await issuer.verify(id_token, client_id, nonce=str(flow["n"]))
        except IssuerError as exc:
            log.warning("single sign-on failed: %s", exc)
            return refused(request, 502, "Single sign-on is unavailable right now; try again later.")
        except TokenError as exc:
            log.warning("single sign-on refused an ID token: %s", exc)
            return refused(request, 401, "The identity provider's answer could not be verified; nothing was signed in.")
        email = vouched_email(claims)
        if email is None:
            return refused(request, 403, "The identity provider did not vouch for an email address.")
        person = await anyio.to_thread.run_sync(dash.app.identities.person, email)
        if person is None:
            message = f"{email} is not a person on this mailgate; an admin can add you with `mailgate people add`."
            return refused(request, 403, message)
        value, session = dash.codec.issue(person.email, person=True)
        # A page of our own moves on to the dashboard: a redirect chain that began on the
        # issuer's site would be cross-site, and the Strict session cookie would not be sent.
        target = html.escape(_local(str(flow.get("x", "/"))), quote=True)
        page = (
            '<!doctype html><meta charset="utf-8"><title>Signed in</title>'
            f'<meta http-equiv="refresh" content="0;url={target}">'
            f'<p>Signed in. <a href="{target}">Continue</a>.</p>'
        )
        response = HTMLResponse(page, headers=SECURITY_HEADERS)
        dash.codec.set_cookie(response, request, SESSION_COOKIE, value, max_age=session.expires - session.seen)
        response.delete_cookie(FLOW_COOKIE, path="/signin/oidc")
        return response

    return [Route("/signin/oidc", start, methods=["GET"]), Route(CALLBACK, callback, methods=["GET"])]
