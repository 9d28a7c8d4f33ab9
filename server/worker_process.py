"""`mailgate serve`'s worker in a process of its own (the default): workflow tasks and deliveries
run on the other core, and the front door never waits behind them.

The child is `mailgate worker` (the same entry point as a scale-out worker) pointed at the same
Temporal, data dir and task queue. It dies with its parent (PR_SET_PDEATHSIG), so a SIGKILLed
serve leaves no orphan; a stop sends it SIGTERM and waits for its graceful shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from server.settings import Settings, SettingsError
from server.telemetry import free_loopback_address
from workflows.worker import GRACEFUL_SHUTDOWN

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def start_worker_process(settings: Settings, address: str) -> tuple[asyncio.subprocess.Process, str]:
    """The child and the loopback address of its metrics exporter (serve's /metrics merges it in)."""
    metrics = free_loopback_address()
    env = {
        **os.environ,
        "MAILGATE_TEMPORAL_ADDRESS": address,
        "MAILGATE_DATA_DIR": str(settings.data_dir),
        "MAILGATE_TASK_QUEUE": settings.task_queue,
        "MAILGATE_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        # Links in notices and Slack messages point at this serve, whatever its --host/--port flags.
        "MAILGATE_PUBLIC_URL": settings.http_url,
        # Its own exporter: serve's MAILGATE_METRICS_ADDRESS (if set) is the parent's to bind.
        "MAILGATE_METRICS_ADDRESS": metrics,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "worker",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        # stdout may be the MCP stdio channel: the worker logs to the process's own stderr (fd 2, not
        # sys.stderr, which JSON logging wraps; the child writes JSON lines itself then).
        stdout=2,
        preexec_fn=_die_with_parent,  # only prctl, before exec
    )
    return child, metrics


async def wait_until_polling(client: Client, settings: Settings, worker: asyncio.subprocess.Process) -> None:
    """Until the child polls the task queue (pollers are listed by identity: pid@host)."""
    request = DescribeTaskQueueRequest(
        namespace=settings.temporal_namespace,
        task_queue=TaskQueue(name=settings.task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    mine = f"{worker.pid}@"
    for _ in range(1200):
        if worker.returncode is not None:
            raise SettingsError(f"the worker process exited at start (status {worker.returncode}); see the log above")
        response = await client.workflow_service.describe_task_queue(request)
        if any(poller.identity.startswith(mine) for poller in response.pollers):
            return
        await asyncio.sleep(0.05)
    raise SettingsError("the worker process did not start polling within a minute")


async def stop_worker_process(worker: asyncio.subprocess.Process) -> None:
    if worker.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            worker.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(worker.wait(), GRACEFUL_SHUTDOWN.total_seconds() + 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            worker.kill()
        await worker.wait()
