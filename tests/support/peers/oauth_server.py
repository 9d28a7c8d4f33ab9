"""A real OAuth 2.0 authorization server for tests, built on authlib's RFC implementations:
authorization code with PKCE (RFC 7636), refresh tokens (rotated), device authorization
(RFC 8628), revocation (RFC 7009) and introspection (RFC 7662), on a threaded HTTP server.

The human is simulated: ``/authorize`` consents at once for ``user`` (as a browser click
would), and ``approve_device(user_code)`` is what someone typing the code on a phone does.
Resource servers (the SMTP peer, Dovecot) check tokens at ``/introspect`` as client ``rs``.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerToken
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant

from tests.support.ports import free_port

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on loopback, tests only
SCOPE = "mail"
RS_SECRET = "rs-secret"


@dataclass
class Client(ClientMixin):
    client_id: str
    secret: str = ""
    grant_types: tuple[str, ...] = ()

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return ""

    def get_allowed_scope(self, scope: str | None) -> str:
        return SCOPE if not scope else " ".join(s for s in scope.split() if s == SCOPE)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        url = urlsplit(redirect_uri)
        return url.scheme == "http" and url.hostname == "127.0.0.1"  # RFC 8252: any loopback port

    def check_client_secret(self, client_secret: str) -> bool:
        return bool(self.secret) and secrets.compare_digest(client_secret, self.secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == ("client_secret_basic" if self.secret else "none")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    code_challenge: str
    code_challenge_method: str

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class Token:
    client_id: str
    user: str
    scope: str
    access_token: str
    refresh_token: str
    issued_at: float
    expires_in: int
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() > self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return self.user

    def get_client(self) -> Client:
        raise NotImplementedError


@dataclass
class DeviceCredential:
    client_id: str
    scope: str
    device_code: str
    user_code: str
    expires_at: float

    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> str:
        return self.user_code

    def is_expired(self) -> bool:
        return time.time() > self.expires_at


@dataclass
class State:
    user: str
    expires_in: int = 3600
    clients: dict[str, Client] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    tokens: list[Token] = field(default_factory=list)
    devices: dict[str, DeviceCredential] = field(default_factory=dict)
    device_grants: dict[str, str] = field(default_factory=dict)
    introspections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def by_access(self, value: str) -> Token | None:
        return next((t for t in self.tokens if t.access_token == value), None)

    def by_refresh(self, value: str) -> Token | None:
        return next((t for t in self.tokens if t.refresh_token == value), None)


def code_fields(code: str, request: OAuth2Request) -> dict[str, str]:
    """What an authorization code keeps of the request that asked for it: client, redirect, PKCE."""
    data = request.payload.data
    return {
        "code": code,
        "client_id": request.client.client_id,
        "redirect_uri": data.get("redirect_uri", ""),
        "code_challenge": data.get("code_challenge", ""),
        "code_challenge_method": data.get("code_challenge_method", ""),
    }


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        state: State = self.server.state
        state.codes[code] = Code(**code_fields(code, request), scope=request.payload.scope or SCOPE, user=request.user)

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        found = self.server.state.codes.get(code)
        return found if found and found.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        self.server.state.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> str:
        return authorization_code.user


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        token = self.server.state.by_refresh(refresh_token)
        return token if token and not token.revoked else None

    def authenticate_user(self, refresh_token: Token) -> str:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: Token) -> None:
        refresh_token.revoked = True


class DeviceGrant(DeviceCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic"]

    def query_device_credential(self, device_code: str) -> DeviceCredential | None:
        state: State = self.server.state
        return state.devices.get(device_code)

    def query_user_grant(self, user_code: str) -> tuple[str, bool] | None:
        user = self.server.state.device_grants.get(user_code)
        return (user, True) if user else None

    def should_slow_down(self, credential: DeviceCredential) -> bool:
        return False


class DeviceEndpoint(DeviceAuthorizationEndpoint):
    INTERVAL = 1

    def get_verification_uri(self) -> str:
        return f"{self.server.url}/device"

    def save_device_credential(self, client_id: str, scope: str, data: dict[str, Any]) -> None:
        self.server.state.devices[data["device_code"]] = DeviceCredential(
            client_id=client_id,
            scope=scope or SCOPE,
            device_code=data["device_code"],
            user_code=data["user_code"],
            expires_at=time.time() + data["expires_in"],
        )


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "none"]  # public clients send their client_id (RFC 7009 2.1)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        state: State = self.server.state
        return state.by_access(token_string) or state.by_refresh(token_string)

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        token.revoked = True


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        state: State = self.server.state
        state.introspections += 1
        return state.by_access(token_string)

    def introspect_token(self, token: Token) -> dict[str, Any]:
        return {
            "active": True,
            "client_id": token.client_id,
            "token_type": "Bearer",
            "username": token.user,
            "scope": token.scope,
            "exp": int(token.issued_at + token.expires_in),
        }

    def check_permission(self, token: Token, client: Client, request: OAuth2Request) -> bool:
        return client.client_id == "rs"


class BareAuthorizationServer(AuthorizationServer):
    """authlib's server with no web framework: requests arrive as OAuth2Request, answers leave as tuples."""

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def create_json_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


class Server(BareAuthorizationServer):
    def __init__(self, state: State, url: str) -> None:
        super().__init__(scopes_supported=[SCOPE])
        self.state = state
        self.url = url
        self.register_token_generator(
            "default",
            BearerToken(
                access_token_generator=lambda **_: secrets.token_urlsafe(24),
                refresh_token_generator=lambda **_: secrets.token_urlsafe(32),
                expires_generator=lambda client, grant_type: state.expires_in,
            ),
        )
        self.register_grant(CodeGrant, [CodeChallenge(required=True)])
        self.register_grant(RefreshGrant)
        self.register_grant(DeviceGrant)
        self.register_endpoint(DeviceEndpoint)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def query_client(self, client_id: str) -> Client | None:
        return self.state.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.state.tokens.append(
            Token(
                client_id=request.client.client_id,
                user=request.user if isinstance(request.user, str) else self.state.user,
                scope=token.get("scope", SCOPE),
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token", ""),
                issued_at=time.time(),
                expires_in=int(token["expires_in"]),
            )
        )


class _Request(OAuth2Request):
    def __init__(self, method: str, uri: str, headers: dict[str, str], form: dict[str, str]) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)

    @property
    def args(self) -> dict[str, str]:
        return self._form

    @property
    def form(self) -> dict[str, str]:
        return self._form


class PeerHandler(BaseHTTPRequestHandler):
    """What the test authorization servers' HTTP handlers share; ``url`` is the peer's base URL."""

    url = ""

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _answer(self, status: int, body: Any, headers: Any, kind: str = "application/json") -> None:
        payload = json.dumps(body).encode() if isinstance(body, dict) else str(body or "").encode()
        self.send_response(status)
        for name, value in headers or []:
            self.send_header(name, value)
        if not any(name.lower() == "content-type" for name, _ in headers or []):
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _request(self, form: dict[str, str]) -> _Request:
        return _Request(self.command, self.url + self.path, dict(self.headers.items()), form)

    def _consent(self, server: AuthorizationServer, request: _Request, user: object) -> None:
        """The user consents at once (the test plays the browser): a redirect with a code, or the error."""
        try:
            grant = server.get_consent_grant(request, end_user=user)
        except OAuth2Error as exc:
            self._answer(400, dict(exc.get_body()), [])
            return
        self._answer(*server.create_authorization_response(request, grant_user=user, grant=grant))


class HTTPPeer:
    """A peer on 127.0.0.1:``port``, its handler on threads of its own until ``stop()``."""

    port: int
    _http: ThreadingHTTPServer | None = None

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._http = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()


class OAuthPeer(HTTPPeer):
    """The running server; ``client_id`` is a public client (PKCE, no secret)."""

    client_id = "mailgate-test"

    def __init__(self, user: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = State(user=user)
        self.state.clients[self.client_id] = Client(
            self.client_id,
            grant_types=("authorization_code", "refresh_token", DeviceCodeGrant.GRANT_TYPE),
        )
        self.state.clients["rs"] = Client("rs", secret=RS_SECRET)
        self.server = Server(self.state, self.url)

    def start(self) -> OAuthPeer:
        peer = self

        class Handler(PeerHandler):
            url = peer.url

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path != "/authorize":
                    self._answer(404, {"error": "not_found"}, [])
                    return
                with peer.state.lock:
                    self._consent(peer.server, self._request(query), peer.state.user)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
                name = {
                    "/token": None,
                    "/device_authorization": DeviceAuthorizationEndpoint.ENDPOINT_NAME,
                    "/revoke": RevocationEndpoint.ENDPOINT_NAME,
                    "/introspect": IntrospectionEndpoint.ENDPOINT_NAME,
                }
                path = urlsplit(self.path).path
                if path not in name:
                    self._answer(404, {"error": "not_found"}, [])
                    return
                with peer.state.lock:
                    request = self._request(form)
                    if name[path] is None:
                        self._answer(*peer.server.create_token_response(request))
                    else:
                        self._answer(*peer.server.create_endpoint_response(name[path], request))

        self.serve(Handler)
        return self

    # --- what the human and the tests do ---------------------------------------------------

    def approve_device(self, user_code: str) -> None:
        with self.state.lock:
            self.state.device_grants[user_code] = self.state.user

    def mint(self) -> Token:
        """A grant as if the user had just logged in (for tests that do not play the login)."""
        token = Token(
            client_id=self.client_id,
            user=self.state.user,
            scope=SCOPE,
            access_token=secrets.token_urlsafe(24),
            refresh_token=secrets.token_urlsafe(32),
            issued_at=time.time(),
            expires_in=self.state.expires_in,
        )
        with self.state.lock:
            self.state.tokens.append(token)
        return token

    def revoke_all(self) -> None:
        """The user removes mailgate's access in their account settings."""
        with self.state.lock:
            for token in self.state.tokens:
                token.revoked = True

    def expire_access_tokens(self) -> None:
        with self.state.lock:
            for token in self.state.tokens:
                token.issued_at -= token.expires_in + 1

    def active(self, access_token: str) -> str | None:
        """The user an access token is for, if it is valid now (what introspection answers)."""
        with self.state.lock:
            token = self.state.by_access(access_token)
            if token is None or token.revoked or token.is_expired():
                return None
            return token.user

    def tokens(self) -> Iterator[Token]:
        with self.state.lock:
            return iter(list(self.state.tokens))
