"""Request checks shared by every HTTP route: Host/Origin against DNS rebinding, bearer roles."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from server.credentials import Secrets
from server.settings import Settings

MCP_PATHS = ("/mcp", "/sse", "/messages")
METADATA_PATH = "/.well-known/oauth-protected-resource"


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
    """MCP endpoints answer only the agent token (RFC 6750 / RFC 9728 style 401 otherwise)."""

    def __init__(self, app: ASGIApp, secrets: Secrets, base_url: str) -> None:
        self.app = app
        self.secrets = secrets
        self.base_url = base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(MCP_PATHS):
            await self.app(scope, receive, send)
            return
        token = bearer(Headers(scope=scope))
        role = self.secrets.role_of(token) if token else None
        if role == "agent":
            await self.app(scope, receive, send)
            return
        resource = path.split("/")[1]
        metadata = f"{self.base_url}{METADATA_PATH}/{resource}"
        error = "invalid_token" if token else "invalid_request"
        description = (
            "this endpoint takes the agent token" if role == "admin" else "a valid agent bearer token is required"
        )
        response = JSONResponse(
            {"error": error, "error_description": description},
            status_code=401,
            headers={
                "WWW-Authenticate": f'Bearer error="{error}", error_description="{description}", '
                f'resource_metadata="{metadata}"'
            },
        )
        await response(scope, receive, send)


def admin_role(request: Request, secrets: Secrets) -> Response | None:
    """None when the request carries the admin token; otherwise the refusal to send."""
    token = bearer(request.headers)
    role = secrets.role_of(token) if token else None
    if role == "admin":
        return None
    if role == "agent":
        return JSONResponse({"error": "the agent token cannot reach the approver API"}, status_code=403)
    return JSONResponse(
        {"error": "an admin bearer token is required"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="mailgate-approver"'},
    )
