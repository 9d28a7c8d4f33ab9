"""The Starlette app `mailgate serve` runs: our routes first, then the MCP transports."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp
from temporalio.service import RPCError

from server.app import Mailgate
from server.mcp_auth import from_settings as mcp_oauth
from server.stores import database_check
from server.web import api, codec, dashboard, ops, slack_webhook, webhooks
from server.web.security import (
    AgentAuthMiddleware,
    HostOriginMiddleware,
    allowed_hosts,
    no_oauth,
    temporal_ui_origins,
)

MCP_MAX_BODY = 4 * 1024 * 1024


def build_app(
    app: Mailgate,
    mcp: MCPServer,
    ready: Callable[[], bool],
    *,
    worker: ops.Check | None = None,
    metrics_addresses: list[str] | None = None,
) -> ASGIApp:
    settings = app.settings
    hosts = allowed_hosts(settings)
    ui_origins = temporal_ui_origins(settings)
    # Our own middleware checks Host and Origin for every route; the SDK's copy for MCP agrees.
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(hosts),
        allowed_origins=sorted({f"http://{h}" for h in hosts} | {f"https://{h}" for h in hosts}),
    )
    # Stateless: a handshake-era request carries all it needs (the agent's token), so any door of
    # a deployment answers it; SSE responses stay, so progress still streams during a call.
    streamable = mcp.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=security,
        max_request_body_size=MCP_MAX_BODY,
        stateless_http=settings.mcp_stateless_http,
    )
    sse = mcp.sse_app(
        sse_path="/sse",
        message_path="/messages/",
        transport_security=security,
        max_request_body_size=MCP_MAX_BODY,
    )

    async def healthz(request: Request) -> Response:
        if not ready():
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            healthy = await app.client.service_client.check_health(timeout=timedelta(seconds=5))
        except RPCError:
            healthy = False
        if not healthy:
            return JSONResponse({"status": "temporal unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    oauth = mcp_oauth(settings, app.identities)
    routes: list[BaseRoute] = [
        # First: every agent call is a request to /mcp, and Starlette tries the routes in order
        # (after the fifty of the dashboard and the API, matching cost each call ~30 µs of CPU).
        *streamable.routes,
        *sse.routes,
        Route("/healthz", healthz, methods=["GET"]),
        *(oauth.routes() if oauth else []),
        Route("/register", no_oauth, methods=["POST"]),
        *api.routes(app),
        *codec.routes(settings.codec(), app.secrets, ui_origins),
        *webhooks.routes(app),
        *slack_webhook.routes(app),
        *dashboard.routes(app),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            yield

    web = Starlette(
        routes=routes,
        middleware=[
            Middleware(HostOriginMiddleware, hosts=hosts, codec_origins=ui_origins),
            Middleware(AgentAuthMiddleware, secrets=app.secrets, identities=app.identities, oauth=oauth),
        ],
        lifespan=lifespan,
    )
    checks = {"temporal": ops.temporal_check(app.client)}
    if worker is not None:
        checks["worker"] = worker
    if settings.database_url is not None:
        checks["database"] = database_check(app.sandbox.db)
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    return ops.Ops(web, started=ready, checks=checks, metrics_addresses=metrics_addresses or [], metrics_token=token)
