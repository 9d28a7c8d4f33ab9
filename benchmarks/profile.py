"""Where a `durable_send` spends its time: py-spy samples `mailgate serve` while an agent sends.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python -m benchmarks.profile        # writes benchmarks/profile.md

The serve process runs the HTTP app and the MCP server, and starts the worker as a process of
its own. py-spy samples both (only while a thread is on the CPU) during sequential
`durable_send` calls over streamable HTTP;
each sample is charged to the innermost frame that belongs to a layer, so pydantic work
called by the MCP SDK counts as MCP and work called by the Temporal client counts as
Temporal. The send's first workflow task runs in the worker process and is shown apart: it is
what the bare worker does in the bare benchmark too. Wall-clock figures of the same run, with
a bare `start_workflow` beside them, put the CPU figures in context.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from benchmarks.bare import BareSendWorkflow, bare_payload
from benchmarks.harness import ROOT, bench_stack, machine, summary, timed
from benchmarks.latency import _sender
from workflows.sandbox import workflow_runner
from workflows.temporal import data_converter
from workflows.worker import WORKFLOWS

RATE = 1000  # samples per second
CALLS = 300
OUT = ROOT / "benchmarks"

# (layer, path fragments), checked from the innermost frame outwards.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("Temporal client (encode, memo, search attributes, gRPC)", ("/temporalio/",)),
    ("mailgate (validation, policy, ids, tool code)", (f"{ROOT}/server/", f"{ROOT}/workflows/")),
    ("MCP SDK (JSON-RPC, argument and output validation)", ("/mcp/",)),
    ("HTTP transport (uvicorn, starlette, SSE streams)", ("/uvicorn/", "/starlette/", "/sse_starlette/", "/h11/")),
]
WORKER = "Temporal worker (the send's first workflow task)"
OTHER = "event loop and other"


def classify(stack: str) -> tuple[str, str]:
    """The layer a sample is charged to, and the frame inside that layer it was in."""
    frames = stack.split(";")
    if any("/temporalio/worker/" in frame for frame in frames):
        inner = next((f for f in reversed(frames) if "/temporalio/" in f or str(ROOT) in f), frames[-1])
        return WORKER, inner
    for frame in reversed(frames):
        if f"{ROOT}/server/cli/command.py" in frame or f"{ROOT}/server/cli/__main__.py" in frame:
            continue  # the entry points that run the event loop, not work of their own
        for layer, fragments in LAYERS:
            if any(fragment in frame for fragment in fragments):
                return layer, frame
    return OTHER, frames[-1]


def charge(raw: str) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """Samples per layer, and per frame within a layer, from py-spy's raw output
    (`frame;frame;... count` lines, innermost frame last)."""
    layers: Counter[str] = Counter()
    frames: Counter[tuple[str, str]] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            layer, frame = classify(stack)
            layers[layer] += int(count)
            frames[layer, _short(frame)] += int(count)
    return layers, frames


def _short(frame: str) -> str:
    """`function (/long/path/site-packages/pkg/mod.py:12)` -> `function (pkg/mod.py)`."""
    function, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", f"{ROOT}/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{function} ({re.sub(r'^.*/lib/python3[.0-9]*/', '', path)})"


async def profile() -> str:
    async with bench_stack() as bench, bench.bare_worker() as queue, bench.mcp_http() as client:
        send = _sender(client, "profile")

        async def bare() -> None:
            await bench.temporal.start_workflow(
                BareSendWorkflow.run, bare_payload(0), id=f"bare-profile-{time.monotonic_ns()}", task_queue=queue
            )

        bare_wall = summary(await timed(bare, CALLS, warmup=20))
        await timed(send, 20, warmup=0)
        raw = bench.workdir / "py-spy.txt"
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(bench.serve.pid),
                "--rate",
                str(RATE),
                "--format",
                "raw",
                "--full-filenames",
                "--nonblocking",
                "--subprocesses",  # the worker process serve starts
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await asyncio.sleep(1.0)  # py-spy attaches
        wall = summary(await timed(send, CALLS, warmup=0))
        spy.send_signal(signal.SIGINT)
        await asyncio.to_thread(spy.wait, 30)
        layers, frames = charge(raw.read_text())
    return report(layers, frames, wall, bare_wall)


def report(
    samples: Counter[str], frames: Counter[tuple[str, str]], wall: dict[str, float], bare_wall: dict[str, float]
) -> str:
    info = machine()
    per_call = {layer: count * 1000 / RATE / CALLS for layer, count in samples.items()}
    total = sum(per_call.values())
    lines = [
        f"Profiled {time.strftime('%Y-%m-%d %H:%M:%S %Z')} on {info['cpu']}, {info['cores']} cores, "
        f"Python {info['python']}: {CALLS} sequential `durable_send` calls over streamable HTTP, "
        f"py-spy at {RATE} Hz on `mailgate serve`.",
        "",
        f"Wall clock p50: mailgate {wall['p50_ms']} ms, bare `start_workflow` {bare_wall['p50_ms']} ms "
        f"({round(wall['p50_ms'] / bare_wall['p50_ms'], 2)}x).",
        "",
        "| where (CPU in `mailgate serve` and its worker process, per call) | ms | share |",
        "|---|---|---|",
    ]
    for layer, ms in sorted(per_call.items(), key=lambda item: -item[1]):
        lines.append(f"| {layer} | {ms:.2f} | {ms / total:.0%} |")
    lines.append(f"| total | {total:.2f} | |")
    for layer in (WORKER, OTHER, LAYERS[1][0]):
        lines += ["", f"Hottest frames in {layer}:", "", "| frame | ms per call |", "|---|---|"]
        top = sorted(((n, f) for (lay, f), n in frames.items() if lay == layer), reverse=True)[:8]
        lines += [f"| `{frame}` | {count * 1000 / RATE / CALLS:.2f} |" for count, frame in top]
    return "\n".join(lines) + "\n"


async def _replayed(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


async def sandbox_cost(copies: int = 300) -> str:
    """What the workflow sandbox costs: a committed send history replayed under three runners.

    Each replay builds a fresh workflow instance, as a worker does for every send it has not
    cached. mailgate's sandbox (workflows/sandbox.py) keeps the guard on workflow modules: it
    stops workflow code from reaching clocks, randomness and I/O, and the replay tests run under
    it too.
    """
    text = (ROOT / "tests" / "histories" / "send-approved.json").read_text()
    # Built in this order on purpose: workflow_runner() installs mailgate's compile-once finder for
    # the whole process, so Temporal's default sandbox is measured before it, as it comes.
    runners: dict[str, Callable[[], WorkflowRunner]] = {
        "Temporal's default sandbox": SandboxedWorkflowRunner,
        "mailgate's sandbox (pure modules passed through, workflow modules guarded, compiled once)": workflow_runner,
        "sandboxed, all of `workflows` passed through (no guard on workflow code)": lambda: SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows")
        ),
        "no sandbox": UnsandboxedWorkflowRunner,
    }
    lines = [
        "",
        f"The workflow sandbox, measured by replaying `tests/histories/send-approved.json` {copies} times "
        "(a fresh workflow instance each time):",
        "",
        "| runner | ms per replayed send |",
        "|---|---|",
    ]
    for name, make_runner in runners.items():
        replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(), workflow_runner=make_runner())
        await replayer.replay_workflows(_replayed([WorkflowHistory.from_json("warm", text)] * 20))
        histories = [WorkflowHistory.from_json(f"send-{i}", text) for i in range(copies)]
        started = time.perf_counter()
        await replayer.replay_workflows(_replayed(histories))
        lines.append(f"| {name} | {(time.perf_counter() - started) * 1000 / copies:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    global CALLS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=CALLS, help="sends profiled, and sends replayed per runner")
    CALLS = parser.parse_args().calls
    table = asyncio.run(profile()) + asyncio.run(sandbox_cost(CALLS))
    (OUT / "profile.md").write_text(table)
    print(table)
    sys.stdout.flush()
    os._exit(0)  # temporalio's threads can crash interpreter finalization


if __name__ == "__main__":
    main()
