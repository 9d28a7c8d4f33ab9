"""Endpoints for whatever runs mailgate: liveness, readiness and Prometheus metrics.

They sit in front of the Host check: a kubelet probe or a scraper reaches a pod by its IP, not
by the public name. None of them shows user data; /metrics needs MAILGATE_METRICS_TOKEN when set,
otherwise it answers loopback clients only (a browser page cannot read it through a rebound name
from another machine, and a scraper elsewhere needs the token)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import Client
from temporalio.service import RPCError

from server.telemetry import merge_exposition
from server.web.security import bearer

if TYPE_CHECKING:  # the front door loads the worker's code only when it runs a worker itself
    from temporalio.worker import Worker

Check = Callable[[], Awaitable[bool]]
LOOPBACK_CLIENTS = ("127.0.0.1", "::1")
CHECK_TIMEOUT = 5.0


def temporal_check(client: Client) -> Check:
    async def check() -> bool:
        try:
            return await client.service_client.check_health(timeout=timedelta(seconds=CHECK_TIMEOUT))
        except RPCError:
            return False

    return check


def worker_check(worker: Worker) -> Check:
    async def check() -> bool:
        return worker.is_running and not worker.is_shutdown

    return check


class Ops:
    """/livez, /readyz and /metrics, answered before the app (and its Host check) sees the request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        started: Callable[[], bool],
        checks: dict[str, Check],
        metrics_addresses: list[str],
        metrics_token: str | None,
    ) -> None:
        self.app = app
        self.started = started
        self.checks = checks
        self.metrics_addresses = metrics_addresses
        self.metrics_token = metrics_token
        self.routes: dict[str, Callable[[Request], Awaitable[Response]]] = {
            "/livez": self.livez,
            "/readyz": self.readyz,
            "/metrics": self.metrics,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if request.method not in ("GET", "HEAD"):
            response: Response = PlainTextResponse("Method Not Allowed", status_code=405)
        else:
            response = await handler(request)
        await response(scope, receive, send)

    async def livez(self, request: Request) -> Response:
        # The event loop answers: the process is not wedged. Nothing outside it is asked, so a
        # Temporal outage never makes an orchestrator restart every front door at once.
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if not self.started():
            return JSONResponse({"status": "starting", "checks": {}}, status_code=503)
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[n]) for n in names))
        checks = {n: "ok" if ok else "failing" for n, ok in zip(names, results, strict=True)}
        ready = all(results)
        body = {"status": "ok" if ready else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    @staticmethod
    async def _run(check: Check) -> bool:
        try:
            return await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except Exception:
            return False

    async def metrics(self, request: Request) -> Response:
        if self.metrics_token is not None:
            given = bearer(request.headers) or ""
            if not hmac.compare_digest(given.encode(), self.metrics_token.encode()):
                return PlainTextResponse(
                    "Unauthorized", status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
                )
        elif request.client is None or request.client.host not in LOOPBACK_CLIENTS:
            return PlainTextResponse("Forbidden: set MAILGATE_METRICS_TOKEN to scrape from elsewhere", status_code=403)
        if not self.metrics_addresses:
            return PlainTextResponse("metrics are off in this process", status_code=404)
        try:
            async with httpx.AsyncClient(timeout=CHECK_TIMEOUT) as http:
                answers = [await http.get(f"http://{a}/metrics") for a in self.metrics_addresses]
                for answer in answers:
                    answer.raise_for_status()
        except httpx.HTTPError as exc:
            return PlainTextResponse(f"the metrics exporter did not answer: {exc}", status_code=503)
        body = merge_exposition([a.text for a in answers])
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4")
