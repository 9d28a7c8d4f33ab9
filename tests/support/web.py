"""The HTTP app served by a real uvicorn on a free port, with an admin, an agent and an anonymous client."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import uvicorn
from pydantic import SecretStr

from server.app import Mailgate
from server.mcp_server import build_mcp
from server.web.app import build_app
from tests.support.app import ADMIN_TOKEN, AGENT_TOKEN
from tests.support.peers.oidc_server import OIDCPeer


@dataclass
class Web:
    app: Mailgate
    url: str
    admin: httpx.AsyncClient
    agent: httpx.AsyncClient
    anonymous: httpx.AsyncClient


@contextlib.asynccontextmanager
async def serving(app: Mailgate) -> AsyncIterator[str]:
    """The HTTP app on the settings' port; yields its URL."""
    port = app.settings.port
    server = uvicorn.Server(
        uvicorn.Config(build_app(app, build_mcp(app), ready=lambda: True), port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def serve_web(app: Mailgate) -> AsyncIterator[Web]:
    """The HTTP app with an admin, an agent and an anonymous client."""
    async with (
        serving(app) as url,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30) as admin,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {AGENT_TOKEN}"}, timeout=30) as agent,
        httpx.AsyncClient(base_url=url, timeout=30) as anonymous,
    ):
        yield Web(app, url, admin, agent, anonymous)


def with_sso(app: Mailgate, idp: OIDCPeer) -> Mailgate:
    """The app signing people in to the dashboard through ``idp``."""
    settings = app.settings.model_copy(
        update={
            "oidc_issuer": idp.url,
            "oidc_client_id": idp.dashboard_id,
            "oidc_client_secret": SecretStr(idp.dashboard_secret),
        }
    )
    return dataclasses.replace(app, settings=settings)
