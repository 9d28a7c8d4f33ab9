"""Request checks shared by every HTTP route: Host/Origin against DNS rebinding, bearer roles."""

from __future__ import annotations

from urllib.parse import urlsplit

import anyio
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from server.credentials import Secrets
from server.identities import ADMIN, AGENT_TOKEN_PREFIX, DEFAULT, PERSON_TOKEN_PREFIX, IdentityStore, Person
from server.mcp_auth import McpOAuth, looks_like_jwt
from server.settings import Settings
from server.web.client_gone import forgive_gone_clients
from server.web.throttle import client_address, refusal_for, throttle_of, too_many

MCP_PATHS = ("/mcp", "/sse", "/messages")
# No quotes, no request data: this text goes into a quoted-string of WWW-Authenticate.
HOW_TO_AUTHENTICATE = (
    "send the agent token in the header Authorization: Bearer TOKEN (the token is in agent.token "
    "in the data dir, or MAILGATE_AGENT_TOKEN; mcp-remote takes it with --header); "
    "mailgate has no OAuth authorization server"
)


def allowed_hosts(settings: Settings) -> set[str]:
    port = settings.port
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
    if settings.host not in ("0.0.0.0", "::", "127.0.0.1", "localhost", "::1"):  # noqa: S104
        hosts.add(f"{settings.host}:{port}")
    if settings.public_url:
        hosts.add(urlsplit(settings.public_url).netloc)
    return hosts


def temporal_ui_origins(settings: Settings) -> set[str]:
    url = settings.temporal_ui
    if not url:
        return set()
    parts = urlsplit(url)
    origins = {f"{parts.scheme}://{parts.netloc}"}
    if parts.hostname == "127.0.0.1" and parts.port:
        origins.add(f"{parts.scheme}://localhost:{parts.port}")
    return origins


class HostOriginMiddleware:
    """421 for a Host we do not serve, 403 for a foreign Origin: a rebound DNS name gets nothing."""

    def __init__(self, app: ASGIApp, hosts: set[str], codec_origins: set[str] | None = None) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = {f"http://{h}" for h in hosts} | {f"https://{h}" for h in hosts}
        # The Temporal UI, on its own port, may call the codec endpoint and nothing else.
        self.codec_origins = codec_origins or set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            if headers.get("host") not in self.hosts:
                await Response("Misdirected request: unexpected Host header", status_code=421)(scope, receive, send)
                return
            origin = headers.get("origin")
            allowed = self.origins | self.codec_origins if scope["path"].startswith("/codec/") else self.origins
            if origin is not None and origin not in allowed:
                await Response("Forbidden: foreign Origin", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def bearer(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class AgentAuthMiddleware:
    """MCP endpoints answer only agent tokens (RFC 6750 401 otherwise).

    The token's agent is left in the request state, where server/tools/scope.py finds it.
    The challenge names no protected-resource metadata: with no authorization server to
    point at, OAuth clients would try dynamic registration here and fail opaquely. It says
    how to pass the token instead, and never echoes anything from the request.
    """

    def __init__(
        self, app: ASGIApp, secrets: Secrets, identities: IdentityStore, oauth: McpOAuth | None = None
    ) -> None:
        self.app = app
        self.mcp = forgive_gone_clients(app)
        self.secrets = secrets
        self.identities = identities
        # With an authorization server configured, its JWTs are accepted too (server/mcp_auth.py).
        self.oauth = oauth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(MCP_PATHS):
            await self.app(scope, receive, send)
            return
        token = bearer(Headers(scope=scope))
        if token:
            throttle, address = throttle_of(scope), client_address(scope)
            wait = throttle.wait(address)
            if wait > 0:
                await too_many(wait)(scope, receive, send)
                return
            role = self.secrets.role_of(token)
            agent = DEFAULT if role == "agent" else None
            if role is None and token.startswith(AGENT_TOKEN_PREFIX):
                agent = await anyio.to_thread.run_sync(self.identities.agent_by_token, token)
            elif role is None and self.oauth is not None and looks_like_jwt(token):
                agent = await self.oauth.agent(token)
            if agent is not None:
                scope.setdefault("state", {})["agent"] = agent
                await self.mcp(scope, receive, send)
                return
            if role is None and token.startswith(PERSON_TOKEN_PREFIX):
                role = "person"  # a real credential, but for /api and the CLI: no failure counted
            if role is None:
                throttle.failed(address)
        else:
            role = None
        error = "invalid_token" if token else "invalid_request"
        description = (
            "this endpoint takes an agent token, not the admin token or a person's API token"
            if role in ("admin", "person")
            else f"a valid agent bearer token is required: {HOW_TO_AUTHENTICATE}"
        )
        challenge = f'Bearer error="{error}", error_description="{description}"'
        if self.oauth is not None:
            if role not in ("admin", "person"):
                description = "a valid agent token, or an access token of the authorization server named here"
            challenge = self.oauth.challenge(error, description)
        response = JSONResponse(
            {"error": error, "error_description": description},
            status_code=401,
            headers={"WWW-Authenticate": challenge},
        )
        await response(scope, receive, send)


async def no_oauth(request: Request) -> Response:
    """Where OAuth clients that find no metadata try to register (/register): say what to do instead."""
    return JSONResponse({"error": "no_oauth", "error_description": HOW_TO_AUTHENTICATE}, status_code=404)


async def api_caller(request: Request, secrets: Secrets, identities: IdentityStore) -> Person | Response:
    """Who calls the approver API: a person by their API token, or the admin token (break glass,
    as the built-in `ADMIN` person). Anything else gets the refusal to send."""
    token = bearer(request.headers)
    throttled = refusal_for(request) if token else None
    if throttled is not None:
        return throttled
    if token and token.startswith(PERSON_TOKEN_PREFIX):
        person = await anyio.to_thread.run_sync(identities.person_by_token, token)
        if person is not None:
            return person
    refusal = admin_role(request, secrets)
    return ADMIN if refusal is None else refusal


def admin_role(request: Request, secrets: Secrets) -> Response | None:
    """None when the request carries the admin token; otherwise the refusal to send."""
    token = bearer(request.headers)
    if token:
        throttled = refusal_for(request)
        if throttled is not None:
            return throttled
    role = secrets.role_of(token) if token else None
    if role == "admin":
        return None
    agent_shaped = bool(token) and (token or "").startswith(AGENT_TOKEN_PREFIX)
    if token and role is None and not agent_shaped:
        throttle_of(request.scope).failed(client_address(request.scope))
    if role == "agent" or agent_shaped:
        return JSONResponse({"error": "an agent token cannot reach the approver API"}, status_code=403)
    return JSONResponse(
        {"error": "a person's API token or the admin token is required"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="mailgate-approver"'},
    )
