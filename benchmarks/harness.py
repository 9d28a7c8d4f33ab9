"""What every benchmark shares: one Temporal dev server, a `mailgate serve` on it, and bare Temporal.

Both sides run in the same process tree, on the same server, in the same run, so the ratios
between them mean something even on a noisy shared machine.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from temporalio.client import Client as TemporalClient
from temporalio.worker import Worker

from benchmarks.bare import BareSendWorkflow, bare_deliver
from server.embedded import DevServer, start_dev_server
from server.settings import Settings
from tests.support.ports import free_port
from workflows.temporal import data_converter

ROOT = Path(__file__).resolve().parent.parent
MAILBOX = "agent@mailgate.local"
THIN_QUEUE = "thin"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


async def timed(call: Callable[[], Awaitable[Any]], n: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        await call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children(pid: int) -> list[int]:
    """Every descendant of a process (the worker process `mailgate serve` starts)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *children(int(child))]
    return found


def tree_rss_mb(pid: int) -> float:
    return round(sum(rss_mb(p) for p in (pid, *children(pid))), 1)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settle(*pids: int, idle: float = 0.1, timeout: float = 600.0) -> float:
    """Wait until these processes are idle (under `idle` of a core for two seconds running);
    returns how long that took. Starting a workflow returns before its first task runs, so a
    measurement taken right after starting thousands would time their backlog, not the system."""
    start = time.monotonic()
    quiet = 0
    while quiet < 2 and time.monotonic() - start < timeout:
        before = sum(cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(1.0)
        used = sum(cpu_seconds(pid) for pid in pids) - before
        quiet = quiet + 1 if used < idle * len(pids) else 0
    return round(time.monotonic() - start, 1)


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(int(memory) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


async def send_waiting(client: Client, i: int) -> str:
    """One `durable_send` that waits for approval, keyed by ``i``; its send id."""
    result = await client.call_tool(
        "durable_send",
        {
            "mailbox": MAILBOX,
            "to": ["bob@example.com"],
            "subject": f"waiting {i}",
            "body": "b",
            "idempotency_key": f"scale-{i}",
        },
    )
    return str((result.structured_content or {})["send_id"])


@dataclass
class Bench:
    workdir: Path
    dev: DevServer
    temporal: TemporalClient
    serve: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    env: dict[str, str]
    thin_url: str
    worker_process: bool

    def mailgate_pids(self) -> list[int]:
        return [self.serve.pid, *children(self.serve.pid)]

    def token(self, role: str) -> str:
        return (self.data_dir / f"{role}.token").read_text().strip()

    @contextlib.asynccontextmanager
    async def mcp_http(self) -> AsyncIterator[Client]:
        headers = {"Authorization": f"Bearer {self.token('agent')}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(f"{self.url}/mcp", http_client=http)) as client,
        ):
            yield client

    @contextlib.asynccontextmanager
    async def mcp_stdio(self) -> AsyncIterator[Client]:
        params = StdioServerParameters(command=sys.executable, args=["-m", "server.cli", "mcp"], env=self.env)
        async with Client(params) as client:
            yield client

    @contextlib.asynccontextmanager
    async def thin_http(self) -> AsyncIterator[Client]:
        """The thin baseline over streamable HTTP (benchmarks/thin.py)."""
        async with (
            httpx2.AsyncClient(timeout=60) as http,
            Client(streamable_http_client(f"{self.thin_url}/mcp", http_client=http)) as client,
        ):
            yield client

    @contextlib.asynccontextmanager
    async def thin_stdio(self) -> AsyncIterator[Client]:
        """The thin baseline over stdio: its own process with a client, as `mailgate mcp` attached is."""
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "benchmarks.thin", "stdio", self.dev.address, THIN_QUEUE], env=self.env
        )
        async with Client(params) as client:
            yield client

    def api(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.token('admin')}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60)

    @contextlib.asynccontextmanager
    async def bare_worker(self, task_queue: str = "bare") -> AsyncIterator[str]:
        async with Worker(
            self.temporal, task_queue=task_queue, workflows=[BareSendWorkflow], activities=[bare_deliver]
        ):
            yield task_queue


@contextlib.asynccontextmanager
async def bench_stack(extra_env: dict[str, str] | None = None) -> AsyncIterator[Bench]:
    """A file-backed dev server (as `mailgate serve` runs it) and a `mailgate serve` using it."""
    # Bytecode as an installed wheel has it: with PYTHONDONTWRITEBYTECODE set (as here), the
    # worker would compile each workflow module's source once (workflows/sandbox.py keeps the code).
    compileall.compile_dir(ROOT / "workflows", quiet=1)
    with tempfile.TemporaryDirectory(prefix="mailgate-bench-") as scratch:
        workdir = Path(scratch)
        temporal_dir = workdir / "temporal"
        temporal_dir.mkdir()
        settings = Settings(
            data_dir=temporal_dir, temporal_port=free_port(), temporal_ui_port=free_port(), agent_token=None
        )
        dev = start_dev_server(settings)
        try:
            temporal = await _connect(dev.address)
            data_dir = workdir / "mailgate"
            data_dir.mkdir()
            port = free_port()
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")},
                "MAILGATE_DATA_DIR": str(data_dir),
                "MAILGATE_TEMPORAL_ADDRESS": dev.address,
                "MAILGATE_PORT": str(port),
                "MAILGATE_SMTP_PORT": "0",
                "MAILGATE_TASK_QUEUE": "mailgate-bench",
                # The scale benchmark keeps 10,000 sends of one mailbox waiting on purpose.
                "MAILGATE_MAX_PENDING_PER_MAILBOX": "100000",
                **(extra_env or {}),
            }
            log = (workdir / "serve.log").open("ab")
            serve = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve"], env=env, stdout=log, stderr=log, cwd=ROOT
            )
            url = f"http://127.0.0.1:{port}"
            # The thin baseline lays its processes out as mailgate does: its worker in a process of
            # its own, or beside HTTP when mailgate's is (MAILGATE_WORKER_PROCESS=false).
            worker_process = env.get("MAILGATE_WORKER_PROCESS", "true").lower() not in ("false", "0")
            thin_port = free_port()
            thin_args = ["-m", "benchmarks.thin", "http", dev.address, THIN_QUEUE, str(thin_port)]
            processes = [
                serve,
                subprocess.Popen(
                    [sys.executable, *thin_args, *([] if worker_process else ["--worker"])],
                    env=env,
                    stdout=log,
                    stderr=log,
                    cwd=ROOT,
                ),
            ]
            if worker_process:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "benchmarks.bare_worker", dev.address, THIN_QUEUE],
                        env=env,
                        stdout=log,
                        stderr=log,
                        cwd=ROOT,
                    )
                )
            try:
                await _healthy(url, serve, workdir / "serve.log")
                thin_url = f"http://127.0.0.1:{thin_port}"
                await _listening(thin_port, processes[1], workdir / "serve.log")
                yield Bench(workdir, dev, temporal, serve, url, data_dir, env, thin_url, worker_process)
            finally:
                for process in processes:
                    process.terminate()
                    process.wait(60)
        finally:
            dev.stop()


async def _connect(address: str) -> TemporalClient:
    for _ in range(150):
        try:
            return await TemporalClient.connect(address, data_converter=data_converter())
        except RuntimeError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"no Temporal at {address}")


async def _listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"the thin baseline exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the thin baseline did not listen")


async def _healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"mailgate serve exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("mailgate serve did not become healthy")
