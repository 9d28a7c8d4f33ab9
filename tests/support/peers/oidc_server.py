"""A real OpenID Connect provider and OAuth 2.1 authorization server for tests, on authlib.

It extends the OAuth peer (tests/support/peers/oauth_server.py) with what single sign-on and OAuth on
/mcp need: discovery (``/.well-known/openid-configuration``), a JWKS, a sign-in page a browser
fills in, ID tokens (authlib's ``OpenIDCode`` extension: nonce, audience, RS256), and JWT access
tokens (RFC 9068, audience from the RFC 8707 ``resource`` parameter) for the client credentials
grant of agents. ``sign`` makes tokens with the provider's own key, for the expired or
wrong-audience cases a real provider would not hand out on request.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc6749 import OAuth2Request, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.support.peers.oauth_server import (
    BareAuthorizationServer,
    Client,
    Code,
    HTTPPeer,
    PeerHandler,
    _Request,
    code_fields,
)
from tests.support.ports import free_port

SCOPES = ("openid", "email", "profile", "mailgate")


@dataclass
class User:
    email: str
    password: str
    # What the ID token says of the email: True, or what a careless provider sends (None: nothing).
    email_verified: Any = True

    def get_user_id(self) -> str:
        return self.email


@dataclass
class OIDCClient(Client):
    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(s for s in (scope or "").split() if s in SCOPES)


@dataclass
class OIDCCode(Code):
    nonce: str = ""
    auth_time: int = 0

    def get_nonce(self) -> str:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return ""

    def get_amr(self) -> list[str]:
        return []


@dataclass
class Provider:
    url: str
    key: RSAKey
    users: dict[str, User] = field(default_factory=dict)
    clients: dict[str, OIDCClient] = field(default_factory=dict)
    codes: dict[str, OIDCCode] = field(default_factory=dict)
    resource: str | None = None  # the RFC 8707 resource of the token request being answered
    issued: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        provider: Provider = self.server.provider
        provider.codes[code] = OIDCCode(
            **code_fields(code, request),
            scope=request.payload.scope or "",
            user=request.user.email,
            nonce=request.payload.data.get("nonce", ""),
            auth_time=int(time.time()),
        )

    def query_authorization_code(self, code: str, client: Client) -> OIDCCode | None:
        found = self.server.provider.codes.get(code)
        return found if found and found.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: OIDCCode) -> None:
        self.server.provider.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: OIDCCode) -> User:
        user: User = self.server.provider.users[authorization_code.user]
        return user


class ClientCredentials(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]


class IDToken(OpenIDCode):
    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return self.provider.key

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": str(self.provider.key.kid)}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": self.provider.url, "aud": [client.get_client_id()], "exp": int(time.time()) + 600}

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return any(c.nonce == nonce for c in self.provider.codes.values())

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        info = UserInfo(sub=user.email, email=user.email)
        if user.email_verified is not None:
            info["email_verified"] = user.email_verified
        return info


class AccessTokens(JWTBearerTokenGenerator):
    def __init__(self, provider: Provider) -> None:
        super().__init__(issuer=provider.url, alg="RS256")
        self.provider = provider

    def get_jwks(self) -> KeySet:
        return KeySet([self.provider.key])

    def get_audiences(self, client: Client, user: User | None, scope: str) -> str:
        return self.provider.resource or client.get_client_id()


class Server(BareAuthorizationServer):
    def __init__(self, provider: Provider) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.provider = provider
        self.register_token_generator("default", AccessTokens(provider))
        self.register_grant(CodeGrant, [CodeChallenge(required=True), IDToken(provider)])
        self.register_grant(ClientCredentials)

    def query_client(self, client_id: str) -> OIDCClient | None:
        return self.provider.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.provider.issued.append(token)


SIGNIN_PAGE = """<!doctype html><meta charset="utf-8"><title>Test identity provider</title>
<h1>Sign in to the test identity provider</h1>{error}
<form method="post" action="/authorize" id="idp-signin">{hidden}
<label>Email <input name="login_email" type="email"></label>
<label>Password <input name="login_password" type="password"></label>
<button type="submit">Sign in</button></form>"""


class OIDCPeer(HTTPPeer):
    """The running provider: ``dashboard`` is a confidential client for single sign-on."""

    dashboard_id = "mailgate-dashboard"
    dashboard_secret = "dashboard-secret-" + "x" * 16

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-1"}, private=True)
        self.provider = Provider(url=self.url, key=self.key)
        self.add_client(
            OIDCClient(self.dashboard_id, secret=self.dashboard_secret, grant_types=("authorization_code",))
        )
        self.server = Server(self.provider)

    def add_user(self, email: str, password: str, email_verified: Any = True) -> None:
        self.provider.users[email] = User(email, password, email_verified)

    def add_client(self, client: OIDCClient) -> None:
        self.provider.clients[client.client_id] = client

    def add_agent_client(self, client_id: str) -> str:
        """A machine client (client credentials grant) for an agent; returns its secret."""
        secret = secrets.token_urlsafe(24)
        self.add_client(OIDCClient(client_id, secret=secret, grant_types=("client_credentials",)))
        return secret

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": list(SCOPES),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        }

    def sign(self, claims: dict[str, Any], key: RSAKey | None = None) -> str:
        """A JWT signed with the provider's key (or another one, for forgeries)."""
        signing = key or self.key
        return jwt.encode({"alg": "RS256", "kid": str(signing.kid)}, claims, signing)

    def start(self) -> OIDCPeer:
        peer = self

        class Handler(PeerHandler):
            url = peer.url

            def _form(self, query: dict[str, str], error: str = "") -> None:
                hidden = "".join(
                    f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in query.items()
                )
                note = f'<p role="alert">{html.escape(error)}</p>' if error else ""
                self._answer(200, SIGNIN_PAGE.format(error=note, hidden=hidden), [], "text/html; charset=utf-8")

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._answer(200, peer.discovery(), [])
                elif url.path == "/jwks":
                    self._answer(200, KeySet([peer.key]).as_dict(private=False), [])
                elif url.path == "/authorize":
                    self._form(query)
                else:
                    self._answer(404, {"error": "not_found"}, [])

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()}
                path = urlsplit(self.path).path
                with peer.provider.lock:
                    if path == "/authorize":
                        self._authorize(form)
                    elif path == "/token":
                        peer.provider.resource = form.get("resource")
                        try:
                            self._answer(*peer.server.create_token_response(self._request(form)))
                        finally:
                            peer.provider.resource = None
                    else:
                        self._answer(404, {"error": "not_found"}, [])

            def _authorize(self, form: dict[str, str]) -> None:
                email, password = form.pop("login_email", ""), form.pop("login_password", "")
                user = peer.provider.users.get(email)
                if user is None or not secrets.compare_digest(user.password, password):
                    self._form(form, "Wrong email or password.")
                    return
                self._consent(peer.server, _Request("GET", f"{peer.url}/authorize?{urlencode(form)}", {}, form), user)

        self.serve(Handler)
        return self
