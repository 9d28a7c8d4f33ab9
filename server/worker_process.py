"""`mailgate serve`'s worker in a process of its own (the default): workflow tasks and deliveries
run on the other core, and the front door never waits behind them.

The child is `mailgate worker` (the same entry point as a scale-out worker) pointed at the same
Temporal, data dir and task queue. It dies with its parent (PR_SET_PDEATHSIG), so a SIGKILLed
serve leaves no orphan; a stop sends it SIGTERM and waits for its graceful shutdown. A child
that dies while serve runs is started again after a pause that doubles with each quick death
(/readyz says "failing" for the worker meanwhile); after several deaths in a row, each soon after
its start, serve stops with the reason instead of restarting a broken install for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from server.settings import Settings, SettingsError
from server.telemetry import free_loopback_address

log = logging.getLogger("mailgate")
PR_SET_PDEATHSIG = 1
RESTARTS = "mailgate_worker_restarts"
# A child that dies within QUICK_DEATH seconds of polling (or before it polls) died quickly; after
# GIVE_UP_AFTER quick deaths in a row serve gives up. Pauses before a restart: FIRST_PAUSE seconds,
# doubled after each quick death, at most MAX_PAUSE; a child that ran longer starts the count afresh.
QUICK_DEATH = 30.0
GIVE_UP_AFTER = 5
FIRST_PAUSE = 0.5
MAX_PAUSE = 30.0


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


WORKER_COMMAND = ("-m", "server.cli", "worker")


async def start_worker_process(
    settings: Settings, address: str, metrics: str | None = None, command: Sequence[str] = WORKER_COMMAND
) -> tuple[asyncio.subprocess.Process, str]:
    """The child and the loopback address of its metrics exporter (serve's /metrics merges it in);
    a restarted child gets the address its predecessor had."""
    metrics = metrics or free_loopback_address()
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
        *command,
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
        try:
            response = await client.workflow_service.describe_task_queue(request)
        except RPCError:
            response = None  # Temporal restarting (its supervisor in server/stack.py): ask again
        if response is not None and any(poller.identity.startswith(mine) for poller in response.pollers):
            return
        await asyncio.sleep(0.05)
    raise SettingsError("the worker process did not start polling within a minute")


async def stop_worker_process(worker: asyncio.subprocess.Process) -> None:
    from workflows.worker import GRACEFUL_SHUTDOWN  # not at the top: serve itself runs no worker

    if worker.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            worker.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(worker.wait(), GRACEFUL_SHUTDOWN.total_seconds() + 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            worker.kill()
        await worker.wait()


class WorkerProcess:
    """serve's worker child, started again when it dies while serve runs."""

    def __init__(
        self,
        settings: Settings,
        client: Client,
        address: str,
        stopping: asyncio.Event,
        *,
        command: Sequence[str] = WORKER_COMMAND,
        first_pause: float = FIRST_PAUSE,
    ) -> None:
        self._settings = settings
        self._client = client
        self._address = address
        self._stopping = stopping
        self._command = command
        self._first_pause = first_pause
        self.child: asyncio.subprocess.Process | None = None
        self.metrics: str | None = None
        self.polling = False
        self.restarts = 0

    async def start(self) -> None:
        """The first child: its failure to start ends serve's start, as before."""
        self.child, self.metrics = await start_worker_process(self._settings, self._address, command=self._command)
        await wait_until_polling(self._client, self._settings, self.child)
        self.polling = True

    async def ready(self) -> bool:
        """/readyz: a child that runs and polls; not while it is down or still starting again."""
        return self.polling and self.child is not None and self.child.returncode is None

    async def watch(self) -> None:
        """Restart the child whenever it dies, until serve stops; raises SettingsError on giving up."""
        quick_deaths = 0
        while True:
            assert self.child is not None
            started = time.monotonic()
            status = await self.child.wait()
            self.polling = False
            if await self._stopped_within(0.2):
                return  # serve is stopping (a Ctrl-C reaches the child too): nothing to restart
            quick = time.monotonic() - started < QUICK_DEATH
            quick_deaths = quick_deaths + 1 if quick else 1
            if quick_deaths >= GIVE_UP_AFTER:
                raise SettingsError(
                    f"the worker process died {quick_deaths} times in a row, each within {QUICK_DEATH:g} s of "
                    f"its start (last exit status {status}); serve stops instead of restarting it again. Its "
                    "errors are in the log above; `mailgate worker` run by hand shows them too"
                )
            pause = min(self._first_pause * 2 ** (quick_deaths - 1), MAX_PAUSE)
            log.warning(
                "the worker process (pid %s) exited with status %s; starting it again in %g s",
                self.child.pid,
                status,
                pause,
            )
            if await self._stopped_within(pause):
                return
            self.restarts += 1
            Runtime.default().metric_meter.create_counter(RESTARTS, "worker processes serve started again").add(1)
            self.child, self.metrics = await start_worker_process(
                self._settings, self._address, self.metrics, self._command
            )
            try:
                await wait_until_polling(self._client, self._settings, self.child)
            except SettingsError as exc:
                log.warning("the restarted worker process did not come up: %s", exc)
                with contextlib.suppress(ProcessLookupError):
                    self.child.kill()  # one that never polls counts as a quick death too
                continue
            self.polling = True
            log.warning("the worker process runs again (pid %s, restart %d)", self.child.pid, self.restarts)

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def stop(self) -> None:
        if self.child is not None:
            await stop_worker_process(self.child)
