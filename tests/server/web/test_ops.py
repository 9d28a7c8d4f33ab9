"""/readyz says which dependency fails, and /livez stays up while one does."""

from __future__ import annotations

import httpx
from temporalio.client import Client

from server.web.ops import Ops, temporal_check
from tests.support.ports import free_port


async def never_reached(scope: object, receive: object, send: object) -> None:
    raise AssertionError("the app behind the probes was asked")


async def test_readyz_fails_while_temporal_is_unreachable_and_livez_does_not() -> None:
    # A real client to a port nothing listens on: what a front door has while Temporal is down.
    client = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)

    async def fine() -> bool:
        return True

    started = {"done": False}
    ops = Ops(
        never_reached,
        started=lambda: started["done"],
        checks={"temporal": temporal_check(client), "worker": fine},
        metrics_addresses=[],
        metrics_token="t",
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ops), base_url="http://x") as http:
        starting = await http.get("/readyz")
        assert (starting.status_code, starting.json()["status"]) == (503, "starting")
        started["done"] = True
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not ready", "checks": {"temporal": "failing", "worker": "ok"}}
        assert (await http.get("/livez")).status_code == 200
        # The token is right but this process exports no metrics.
        assert (await http.get("/metrics", headers={"Authorization": "Bearer t"})).status_code == 404
