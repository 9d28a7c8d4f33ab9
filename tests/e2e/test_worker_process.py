"""`mailgate serve` runs its worker in a process of its own (`mailgate worker`): both cores, and
the front door never waits behind workflow tasks. One command starts both; stopping serve (Ctrl-C,
SIGTERM) ends both, a serve that is killed leaves no worker behind, and a worker that dies is
started again."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from server.embedded import pid_alive
from tests.support.serve import Serve
from tests.support.wait import eventually


def workers_of(pid: int) -> list[int]:
    """The `mailgate worker` processes among a process's children."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"server.cli" in cmdline and b"worker" in cmdline:
                found.append(int(child))
    return found


async def test_serve_starts_its_worker_process_and_sigterm_ends_both(serve: Serve) -> None:
    serve.start()
    assert serve.process is not None
    [worker] = workers_of(serve.process.pid)
    await serve.submit_and_approve(["worker-process-1"])  # delivered by the worker process
    await eventually(lambda: "worker-process-1" in [d.subject for d in serve.deliveries()])
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(timeout=60) == 0
    assert not pid_alive(worker)


async def test_a_killed_serve_leaves_no_worker_behind(serve: Serve) -> None:
    serve.start()
    assert serve.process is not None
    [worker] = workers_of(serve.process.pid)
    os.kill(serve.process.pid, signal.SIGKILL)  # serve alone: its children get no signal from us
    serve.process.wait()
    await eventually(lambda: not pid_alive(worker), timeout=30)


async def test_a_killed_worker_process_is_started_again_and_sends_still_go_out(serve: Serve) -> None:
    serve.start()
    assert serve.process is not None
    [worker] = workers_of(serve.process.pid)
    seen_down = False

    def down_then_back() -> bool:
        nonlocal seen_down
        ready = httpx.get(f"{serve.url}/readyz", timeout=10)
        if ready.status_code == 503 and ready.json()["checks"]["worker"] == "failing":
            seen_down = True
        return seen_down and ready.status_code == 200

    os.kill(worker, signal.SIGKILL)
    await eventually(down_then_back, timeout=60)  # /readyz: not ready while the worker is down
    [again] = workers_of(serve.process.pid)
    assert again != worker
    assert "starting it again" in serve.log()
    await serve.submit_and_approve(["after-restart-1"])  # delivered by the new worker process
    await eventually(lambda: "after-restart-1" in serve.cli("sandbox", "list", "--json").stdout)
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(timeout=60) == 0
    assert not pid_alive(again)


async def test_the_worker_can_run_in_the_serve_process(serve: Serve) -> None:
    serve.extra_env["MAILGATE_WORKER_PROCESS"] = "false"
    serve.start()
    assert serve.process is not None
    assert workers_of(serve.process.pid) == []
    await serve.submit_and_approve(["in-process-1"])
    await eventually(lambda: "in-process-1" in [d.subject for d in serve.deliveries()])
    assert serve.stop() == 0
