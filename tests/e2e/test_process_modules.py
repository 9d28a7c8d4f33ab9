"""Each process of `mailgate serve` loads only what it runs (issue 20: memory with thousands of
sends waiting). Read from the live processes after a send went through both: the worker process
loads no HTTP, MCP or dashboard code; the front door, whose worker runs apart, no worker code; and
neither the PostgreSQL driver (about 12 MB of each) unless MAILGATE_DATABASE_URL is set."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_worker_process import workers_of
from tests.support.live_modules import among, live_modules, live_modules_env
from tests.support.serve import Serve
from tests.support.wait import eventually

FRONT_DOOR_ONLY = (
    "httptools",
    "mcp",
    "starlette",
    "sse_starlette",
    "uvicorn",
    "jinja2",
    "server.web",
    "server.mcp_server",
    "server.tools",
    "server.stack",
)
WORKER_ONLY = ("temporalio.worker", "workflows.worker", "workflows.sandbox", "server.workers")
POSTGRES = ("psycopg", "psycopg_binary", "workflows.store.postgres")


async def test_the_front_door_and_its_worker_process_each_load_only_what_they_run(serve: Serve, tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    serve.extra_env.update(live_modules_env(modules))
    serve.start()
    assert serve.process is not None
    [worker] = workers_of(serve.process.pid)
    await serve.submit_and_approve(["modules-1"])
    await eventually(lambda: "modules-1" in [d.subject for d in serve.deliveries()])

    front_door = await live_modules(serve.process.pid, modules)
    assert {"server.stack", "server.web.app", "mcp"} <= front_door  # it serves HTTP and MCP
    # uvicorn parses HTTP with httptools (C), not h11 (pure Python): less CPU per request.
    assert "uvicorn.protocols.http.httptools_impl" in front_door
    assert "uvicorn.protocols.http.h11_impl" not in front_door
    assert among(front_door, WORKER_ONLY + POSTGRES) == []

    work = await live_modules(worker, modules)
    assert {"server.workers", "workflows.worker", "workflows.send"} <= work  # it ran the send
    assert among(work, FRONT_DOOR_ONLY + POSTGRES) == []
