"""A tiny round-robin HTTP load balancer (no stickiness), for tests of several front doors.

Each request goes to the next backend in turn; responses stream through (SSE included). It
records which backend answered each request, so a test can show that successive requests of one
MCP client landed on different doors.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.support.ports import free_port

HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


@dataclass
class RoundRobin:
    backends: list[str]
    port: int = field(default_factory=free_port)
    served: list[tuple[str, str]] = field(default_factory=list)  # (method, backend) per request, in order

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self, http: httpx.AsyncClient) -> Starlette:
        turns = itertools.cycle(self.backends)

        async def forward(request: Request) -> StreamingResponse:
            backend = next(turns)
            self.served.append((request.method, backend))
            headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
            upstream = await http.send(
                http.build_request(
                    request.method,
                    backend + request.url.path,
                    params=request.query_params,
                    headers=headers,
                    content=await request.body(),
                ),
                stream=True,
            )
            return StreamingResponse(
                upstream.aiter_raw(),
                status_code=upstream.status_code,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP},
                background=BackgroundTask(upstream.aclose),
            )

        methods = ["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"]
        return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RoundRobin]:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http:
            config = uvicorn.Config(
                self.app(http), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve())
            while not server.started:
                if task.done():
                    task.result()  # could not bind: say why
                await asyncio.sleep(0.02)
            try:
                yield self
            finally:
                server.should_exit = True
                await task
