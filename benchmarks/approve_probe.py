"""Where an approval's time goes: the approver API beside the same update sent straight to the
send, and a bare update, interleaved, for sends in and out of the worker's cache.

    .venv/bin/python -m benchmarks.approve_probe --pending 1000 --rounds 15

Each operation runs alone: before the next one, the previous send (mailgate or bare) has
finished delivering, untimed, so no operation pays for another's follow-up work. For each it
prints the p50 wall time and the CPU each process spent (front door, worker, Temporal server,
bare worker, this client) until that send finished.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bare import BareSendWorkflow, bare_payload
from benchmarks.harness import MAILBOX, ROOT, Bench, bench_stack, children, percentile, settle
from benchmarks.profile import _short
from benchmarks.scale import _fill
from server.credentials import load_secrets
from server.settings import Settings
from workflows.models import Decision
from workflows.send import SendEmailWorkflow
from workflows.trust.proofs import proof_key, sign_decision
from workflows.trust.signatures import decision_signing_key, sign_decision_key

stickies: dict[int, bool] = {}


async def update_task(handle: Any, began: float, ended: float) -> tuple[float, float, float, float]:
    """Of the workflow task that accepted the update, per the server's clock (ms): from the call
    to the task's scheduling, scheduled → started (waiting for a worker), started → completed (the
    worker's work), completed → the caller's answer."""
    times: dict[str, float] = {}
    async for event in handle.fetch_history_events():
        at = event.event_time.ToNanoseconds() / 1e6
        for kind in ("scheduled", "started", "completed"):
            if event.HasField(f"workflow_task_{kind}_event_attributes"):
                times[kind] = at
        if event.HasField("workflow_task_scheduled_event_attributes"):
            sticky = event.workflow_task_scheduled_event_attributes.task_queue.kind == 2  # TASK_QUEUE_KIND_STICKY
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            stickies[id(handle)] = sticky
            return (
                times["scheduled"] - began * 1000,
                times["started"] - times["scheduled"],
                times["completed"] - times["started"],
                ended * 1000 - times["completed"],
            )
    nan = float("nan")
    return nan, nan, nan, nan


Op = Callable[[], Awaitable[Callable[[], Awaitable[Any]]]]


def _task_cpu(pid: int) -> float:
    """CPU seconds of every thread of a process, to the nanosecond (schedstat), not the clock tick."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that just ended
    return total / 1e9


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: _task_cpu(pid) for name, pid in pids.items()}


def spy_start(pid: int, out: Path) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--rate", "1000"]
    command += ["--format", "raw", "--full-filenames", "--nonblocking", "--subprocesses", "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def spy_report(raw: str, ops: int) -> dict[str, Any]:
    """Inclusive CPU per operation of each function seen (ms), and the innermost frames, per process."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not (stack and count.isdigit()):
            continue
        frames = stack.split(";")
        process = "worker" if any("server.cli worker" in f for f in frames[:3]) else "serve"
        for frame in dict.fromkeys(f"{process}: {_short(f)}" for f in frames):
            inclusive[frame] += int(count)
        own[f"{process}: {_short(frames[-1])}"] += int(count)
    return {
        "inclusive": {f: round(n / ops, 2) for f, n in inclusive.most_common(150)},
        "own": {f: round(n / ops, 2) for f, n in own.most_common(30)},
    }


async def probe(
    bench: Bench, pending: int, rounds: int, cache: int, only: list[str], spy: bool, alone: bool = True
) -> dict[str, Any]:
    bare_worker = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bare_worker", bench.dev.address, "bare-probe", str(cache)],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    settings = Settings(data_dir=bench.data_dir, agent_token=None)
    key = proof_key(load_secrets(settings).secret_key)
    signing = decision_signing_key(key)
    try:
        person = subprocess.run(
            [
                sys.executable,
                "-m",
                "server.cli",
                "people",
                "add",
                "approver@example.com",
                "--approves",
                MAILBOX,
                "--json",
            ],
            cwd=ROOT,
            env=bench.env,
            capture_output=True,
            check=True,
        )
        headers = {"Authorization": f"Bearer {json.loads(person.stdout)['api_token']}"}
        async with (
            bench.mcp_http() as client,
            bench.api() as api,
            httpx.AsyncClient(base_url=bench.url, headers=headers, timeout=60) as person_api,
        ):

            async def send(i: int) -> str:
                result = await client.call_tool(
                    "durable_send",
                    {
                        "mailbox": MAILBOX,
                        "to": ["bob@example.com"],
                        "subject": f"w {i}",
                        "body": "b",
                        "idempotency_key": f"probe-{i}",
                    },
                )
                return str((result.structured_content or {})["send_id"])

            async def bare_start(i: int) -> Any:
                return await bench.temporal.start_workflow(
                    BareSendWorkflow.run, bare_payload(i), id=f"probe-{uuid.uuid4().hex}", task_queue="bare-probe"
                )

            sends = await _fill(pending, 0, send, concurrency=16)
            bares = await _fill(pending, 0, bare_start, concurrency=16)
            pids = {
                "serve": bench.serve.pid,
                **{f"worker{n}": pid for n, pid in enumerate(children(bench.serve.pid))},
                "temporal": bench.dev.pid,
                "bare_worker": bare_worker.pid,
                "client": os.getpid(),
            }
            print("settled after", await settle(*pids.values()), "s", file=sys.stderr, flush=True)

            # Oldest first: out of every cache. Newest: most recently run, so in the worker's cache.
            old, new = sends[: pending // 2], sends[-(cache // 2) :]
            old_bare, new_bare = bares[: pending // 2], bares[-(cache // 2) :]

            def http(ids: list[str], client: httpx.AsyncClient | None = None) -> Op:
                async def op() -> Callable[[], Awaitable[Any]]:
                    send_id = ids.pop()
                    body = {} if client else {"approver": "bench"}
                    response = await (client or api).post(f"/api/approvals/{send_id}/approve", json=body)
                    response.raise_for_status()
                    sizes.append(len(response.content))
                    handle = bench.temporal.get_workflow_handle(send_id)
                    handled[name_of[id(op)]].append(handle)
                    return handle.result

                return op

            def direct(ids: list[str]) -> Op:
                async def op() -> Callable[[], Awaitable[Any]]:
                    send_id = ids.pop()
                    decision = Decision(decision="approve", approver="bench", channel="api (admin token)")
                    signed = sign_decision(key, send_id, decision, datetime.now(UTC))
                    signed = sign_decision_key(signing, send_id, signed)
                    handle = bench.temporal.get_workflow_handle_for(SendEmailWorkflow.run, send_id)
                    await handle.execute_update(SendEmailWorkflow.decide, signed)
                    handled[name_of[id(op)]].append(handle)
                    return handle.result

                return op

            def bare(handles: list[Any]) -> Op:
                async def op() -> Callable[[], Awaitable[Any]]:
                    handle = handles.pop()
                    await handle.execute_update(BareSendWorkflow.approve_answered)
                    handled[name_of[id(op)]].append(handle)
                    return handle.result  # type: ignore[no-any-return]

                return op

            sizes: list[int] = []
            ops: dict[str, Op] = {
                "http_uncached": http(old[0::4]),
                "http_person_uncached": http(old[2::4], person_api),
                "direct_uncached": direct(old[1::2]),
                "bare_uncached": bare(old_bare[0::2]),
                "http_cached": http(new[0::2]),
                "direct_cached": direct(new[1::2]),
                "bare_cached": bare(new_bare[0::2]),
            }
            ops = {name: op for name, op in ops.items() if not only or name in only}
            spying = spy_start(bench.serve.pid, bench.workdir / "spy.txt") if spy else None
            if spying:
                await asyncio.sleep(1.0)
            name_of = {id(op): name for name, op in ops.items()}
            handled: dict[str, list[Any]] = {name: [] for name in ops}
            walls: dict[str, list[float]] = {name: [] for name in ops}
            spans: dict[str, list[tuple[float, float]]] = {name: [] for name in ops}
            cpus_answer: dict[str, list[dict[str, float]]] = {name: [] for name in ops}
            cpus: dict[str, list[dict[str, float]]] = {name: [] for name in ops}
            # Alone: each operation waits, untimed, for the previous send to finish. Back to back
            # (as benchmarks/scale.py timed before): each kind in a block, the next call right away.
            order = (
                [name for _ in range(rounds) for name in ops]
                if alone
                else [name for name in ops for _ in range(rounds)]
            )
            for name in order:
                op = ops[name]
                before = _cpu(pids)
                start, began = time.perf_counter(), time.time()
                finished = await op()
                walls[name].append(time.perf_counter() - start)
                spans[name].append((began, time.time()))
                answered = _cpu(pids)
                cpus_answer[name].append({p: answered[p] - before[p] for p in pids})
                if alone:
                    await finished()
                    await asyncio.sleep(0.05)  # the last workflow task's completion
                after = _cpu(pids)
                cpus[name].append({p: after[p] - before[p] for p in pids})
            result: dict[str, Any] = {"answer_bytes": sizes[0] if sizes else None}
            if spying:
                spying.send_signal(signal.SIGINT)
                await asyncio.to_thread(spying.wait, 30)
                result["spy"] = spy_report((bench.workdir / "spy.txt").read_text(), rounds * len(ops))
            for name in ops:
                per = {p: round(1000 * percentile([c[p] for c in cpus[name]], 0.5), 1) for p in pids}
                result[name] = {
                    "p50_ms": round(1000 * percentile(walls[name], 0.5), 2),
                    "mean_ms": round(1000 * sum(walls[name]) / len(walls[name]), 2),
                    "cpu_ms_p50": per,
                    "cpu_to_answer_ms_p50": {
                        p: round(1000 * percentile([c[p] for c in cpus_answer[name]], 0.5), 1) for p in pids
                    },
                    "cpu_ms_mean": {p: round(1000 * sum(c[p] for c in cpus[name]) / len(cpus[name]), 1) for p in pids},
                }
                tasks = [await update_task(h, *span) for h, span in zip(handled[name], spans[name], strict=True)]
                result[name]["sticky_share"] = round(sum(stickies[id(h)] for h in handled[name]) / len(tasks), 2)
                result[name]["update_task_ms_p50"] = {
                    part: round(percentile([t[i] for t in tasks], 0.5), 2)
                    for i, part in enumerate(("to_scheduled", "wait", "work", "to_answer"))
                }
            return result
    finally:
        bare_worker.terminate()
        bare_worker.wait(30)


async def main(pending: int, rounds: int, cache: int, only: list[str], spy: bool, alone: bool) -> None:
    async with bench_stack() as bench:
        print(json.dumps(await probe(bench, pending, rounds, cache, only, spy, alone), indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    default_cache = Settings.model_fields["workflow_cache"].default
    parser.add_argument("--cache", type=int, default=default_cache, help="the bare worker's cache (mailgate's default)")
    parser.add_argument("--only", default="", help="comma-separated operations (default: all)")
    parser.add_argument("--spy", action="store_true", help="py-spy on serve and its worker while measuring")
    parser.add_argument("--back-to-back", action="store_true", help="each kind in a block, no wait between calls")
    args = parser.parse_args()
    asyncio.run(
        main(
            args.pending,
            args.rounds,
            args.cache,
            [o for o in args.only.split(",") if o],
            args.spy,
            not args.back_to_back,
        )
    )
    sys.stdout.flush()
    os._exit(0)
