"""The HTTP app served by a real uvicorn on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from server.app import Mailgate
from server.mcp_server import build_mcp
from server.web.app import build_app
from tests.conftest import ADMIN_TOKEN, AGENT_TOKEN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Web:
    app: Mailgate
    url: str
    admin: httpx.AsyncClient
    agent: httpx.AsyncClient
    anonymous: httpx.AsyncClient


@contextlib.asynccontextmanager
async def serve_web(app: Mailgate) -> AsyncIterator[Web]:
    port = free_port()
    app.settings.port = port
    server = uvicorn.Server(
        uvicorn.Config(build_app(app, build_mcp(app), ready=lambda: True), port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    async with (
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30) as admin,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {AGENT_TOKEN}"}, timeout=30) as agent,
        httpx.AsyncClient(base_url=url, timeout=30) as anonymous,
    ):
        yield Web(app, url, admin, agent, anonymous)
    server.should_exit = True
    await task


@pytest.fixture
async def web(app: Mailgate) -> AsyncIterator[Web]:
    async with serve_web(app) as web:
        yield web
