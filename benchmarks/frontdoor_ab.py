"""A/B of `durable_send` between two checkouts of mailgate, beside the thin baseline, in one run.

    git worktree add /tmp/before main     # or: git archive main | tar -x -C /tmp/before
    .venv/bin/python -m benchmarks.frontdoor_ab /tmp/before . [--rounds 10 --calls 50] [--no-stdio]

One Temporal dev server; for each checkout a `mailgate serve` (its own data dir and task queue)
and an attached `mailgate mcp`, each started from that checkout; the thin baseline over HTTP and
stdio. Blocks of calls are interleaved (the order reverses every round), so drift on a shared
machine hits every variant alike. Per variant: wall p50, and CPU per call (from /proc) of the
front door process (its threads apart), its worker process, the Temporal server and this client.
On a loaded machine wall times move a lot; CPU per call is what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from benchmarks.harness import _healthy, _listening, children, cpu_seconds, percentile
from server.embedded import start_dev_server
from server.settings import Settings
from tests.support.ports import free_port

MAILBOX = "agent@mailgate.local"
BODY = "Hello Bob,\n\nthe numbers are in.\n\nBest,\nthe agent\n" * 3


def thread_cpu(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        name = "".join(ch for ch in name if not ch.isdigit()).rstrip("-_ ")
        fields = raw.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}


def started_since(before: set[int], fragment: str) -> list[int]:
    """This process's descendants started since ``before`` whose command line holds ``fragment``."""
    found = []
    for pid in set(children(os.getpid())) - before:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fragment in cmd:
            found.append(pid)
    return found


class Variant:
    def __init__(self, name: str, call: Callable[[int], Awaitable[Any]], front: list[int], worker: list[int]) -> None:
        self.name = name
        self.call = call
        self.front = front
        self.worker = worker
        self.wall: list[float] = []
        self.cpu: dict[str, float] = {"front": 0.0, "worker": 0.0, "temporal": 0.0, "client": 0.0}
        self.n = 0
        self.threads: dict[str, float] = {}


def sender(client: Client, label: str) -> Callable[[int], Awaitable[Any]]:
    async def send(i: int) -> None:
        result = await client.call_tool(
            "durable_send",
            {
                "mailbox": MAILBOX,
                "to": ["Bob <bob@example.com>"],
                "subject": f"Benchmark {i}",
                "body": BODY,
                "idempotency_key": f"{label}-{uuid.uuid4().hex}",
            },
        )
        if result.is_error:
            raise RuntimeError(f"durable_send failed: {result.content}")

    return send


@contextlib.asynccontextmanager
async def http_client(url: str, token: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        yield client


async def main(args: argparse.Namespace) -> None:
    trees = {"A": str(Path(args.a).resolve()), "B": str(Path(args.b).resolve())}
    for tree in trees.values():
        for pkg in ("workflows", "server"):
            compileall.compile_dir(Path(tree) / pkg, quiet=1)
    with tempfile.TemporaryDirectory(prefix="ab-send-") as scratch:
        work = Path(scratch)
        (work / "temporal").mkdir()
        dev = start_dev_server(
            Settings(
                data_dir=work / "temporal", temporal_port=free_port(), temporal_ui_port=free_port(), agent_token=None
            )
        )
        processes: list[subprocess.Popen[bytes]] = []
        log = (work / "log").open("ab")
        try:
            envs: dict[str, dict[str, str]] = {}
            urls: dict[str, str] = {}
            serves: dict[str, subprocess.Popen[bytes]] = {}
            for name, tree in trees.items():
                data = work / name
                data.mkdir()
                port = free_port()
                envs[name] = {
                    **base_env(),
                    "MAILGATE_DATA_DIR": str(data),
                    "MAILGATE_TEMPORAL_ADDRESS": dev.address,
                    "MAILGATE_PORT": str(port),
                    "MAILGATE_SMTP_PORT": "0",
                    "MAILGATE_TASK_QUEUE": f"ab-{name}",
                    "MAILGATE_MAX_PENDING_PER_MAILBOX": "100000",
                }
                serves[name] = subprocess.Popen(
                    [sys.executable, "-m", "server.cli", "serve"], env=envs[name], stdout=log, stderr=log, cwd=tree
                )
                processes.append(serves[name])
                urls[name] = f"http://127.0.0.1:{port}"
            thin_port = free_port()
            thin = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.thin", "http", dev.address, "thin", str(thin_port)],
                env=envs["B"],
                stdout=log,
                stderr=log,
                cwd=trees["B"],
            )
            thin_worker = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.bare_worker", dev.address, "thin"],
                env=envs["B"],
                stdout=log,
                stderr=log,
                cwd=trees["B"],
            )
            processes += [thin, thin_worker]
            for name in trees:
                await _healthy(urls[name], serves[name], work / "log")
            await _listening(thin_port, thin, work / "log")
            await asyncio.sleep(2)
            if args.nice_b:
                for pid in children(serves["B"].pid):
                    for task in Path(f"/proc/{pid}/task").iterdir():
                        os.setpriority(os.PRIO_PROCESS, int(task.name), args.nice_b)
                    print("reniced", pid, file=sys.stderr)
            async with contextlib.AsyncExitStack() as stack:
                variants: list[Variant] = []
                for name in trees:
                    token = (work / name / "agent.token").read_text().strip()
                    client = await stack.enter_async_context(http_client(urls[name], token))
                    workers = children(serves[name].pid)
                    variants.append(Variant(f"{name}_http", sender(client, f"{name}h"), [serves[name].pid], workers))
                client = await stack.enter_async_context(http_client(f"http://127.0.0.1:{thin_port}", None))
                variants.append(Variant("thin_http", sender(client, "th"), [thin.pid], [thin_worker.pid]))
                if not args.no_stdio:
                    for name, tree in trees.items():
                        params = StdioServerParameters(
                            command=sys.executable, args=["-m", "server.cli", "mcp"], env=envs[name], cwd=tree
                        )
                        known = set(children(os.getpid()))
                        client = await stack.enter_async_context(Client(params))
                        front = started_since(known, "server.cli mcp")
                        variants.append(
                            Variant(f"{name}_stdio", sender(client, f"{name}s"), front, children(serves[name].pid))
                        )
                    params = StdioServerParameters(
                        command=sys.executable,
                        args=["-m", "benchmarks.thin", "stdio", dev.address, "thin"],
                        env=envs["B"],
                        cwd=trees["B"],
                    )
                    known = set(children(os.getpid()))
                    client = await stack.enter_async_context(Client(params))
                    front = started_since(known, "benchmarks.thin stdio")
                    variants.append(Variant("thin_stdio", sender(client, "ts"), front, [thin_worker.pid]))
                for v in variants:
                    print(v.name, "front", v.front, "worker", v.worker, file=sys.stderr)
                    for i in range(10):
                        await v.call(i)
                await asyncio.sleep(1)
                me = os.getpid()
                counter = itertools.count()
                for r in range(args.rounds):
                    order = variants if r % 2 == 0 else list(reversed(variants))
                    for v in order:
                        pids = {"front": v.front, "worker": v.worker, "temporal": [dev.pid], "client": [me]}
                        before = {k: sum(cpu_seconds(p) for p in ps) for k, ps in pids.items()}
                        tb = thread_cpu(v.front[0])
                        for _ in range(args.calls):
                            start = time.perf_counter()
                            await v.call(next(counter))
                            v.wall.append(time.perf_counter() - start)
                        await asyncio.sleep(args.settle)  # the worker's first tasks of this block
                        after = {k: sum(cpu_seconds(p) for p in ps) for k, ps in pids.items()}
                        for k in pids:
                            v.cpu[k] += after[k] - before[k]
                        for name, x in thread_cpu(v.front[0]).items():
                            v.threads[name] = v.threads.get(name, 0.0) + x - tb.get(name, 0.0)
                        v.n += args.calls
            header = f"{'front':>6} {'worker':>6} {'tmprl':>6} {'client':>6}"
            print(f"{'variant':12} {'p50 ms':>7} {'mean':>7} | CPU ms/call: {header}")
            for v in variants:
                print(
                    v.name,
                    {k: round(1000 * x / v.n, 2) for k, x in sorted(v.threads.items(), key=lambda kv: -kv[1]) if x > 0},
                )
            for v in variants:
                ms = [s * 1000 for s in v.wall]
                cpu = {k: 1000 * x / v.n for k, x in v.cpu.items()}
                print(
                    f"{v.name:12} {percentile(ms, 0.5):7.2f} {statistics.fmean(ms):7.2f} |              "
                    f"{cpu['front']:6.2f} {cpu['worker']:6.2f} {cpu['temporal']:6.2f} {cpu['client']:6.2f}"
                )
        finally:
            for p in processes:
                p.terminate()
            for p in processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(30)
            dev.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--settle", type=float, default=0.5)
    parser.add_argument("--no-stdio", action="store_true")
    parser.add_argument("--nice-b", type=int, default=0, help="renice B's worker process (an experiment)")
    asyncio.run(main(parser.parse_args()))
    sys.stdout.flush()
    os._exit(0)
