"""Approval cycles per second with 1, 2 and 3 worker processes, beside bare Temporal with as many.

mailgate runs as an operator on one machine would scale it: `mailgate serve` (the front door and
its worker process) plus `mailgate worker` processes on the same task queue, data dir and
Temporal. A cycle is send (MCP over HTTP) → approve (approver API) → delivered (in the sandbox).
Bare Temporal runs the same shape — start, signal, one activity — with as many worker processes
(benchmarks/bare_worker.py). Both wait for the workflow's result; the rounds run bare, mailgate,
mailgate, bare (half the cycles each), so a load that drifts weighs on both sides alike. Every send is checked in the
sandbox afterwards: delivered once, none lost, none twice; an approval the API refuses is counted
(as lost), not retried.

    .venv/bin/python -m benchmarks.run --only cycles
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from benchmarks.bare import BareSendWorkflow, bare_payload
from benchmarks.harness import MAILBOX, ROOT, Bench, children, cpu_seconds, summary

WORKER_COUNTS = (1, 2, 3)


async def _pool(total: int, concurrency: int, cycle: Callable[[int], Awaitable[None]]) -> float:
    """Run `total` cycles, `concurrency` at a time; returns the seconds they took."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await cycle(i)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    return time.perf_counter() - start


async def _polling(bench: Bench, task_queue: str, pids: list[int]) -> None:
    """Until every one of these processes polls the task queue (pollers are listed as pid@host)."""
    request = DescribeTaskQueueRequest(
        namespace="default",
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    for _ in range(1200):
        response = await bench.temporal.workflow_service.describe_task_queue(request)
        polling = {poller.identity.split("@", 1)[0] for poller in response.pollers}
        if all(str(pid) in polling for pid in pids):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"worker processes {pids} did not poll {task_queue!r} within a minute")


def _spawn(bench: Bench, args: list[str]) -> subprocess.Popen[bytes]:
    log = (bench.workdir / "serve.log").open("ab")
    return subprocess.Popen([sys.executable, *args], env=bench.env, stdout=log, stderr=log, cwd=ROOT)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(60)


class _Cpu:
    """CPU seconds each group of processes spends during a round, per cycle: where the time goes."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self._groups = groups
        self._before = self._now()

    def _now(self) -> dict[str, float]:
        used = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self._groups.items()}
        times = os.times()
        used["benchmark client"] = times.user + times.system
        return used

    def per_cycle_ms(self, cycles: int) -> dict[str, float]:
        after = self._now()
        return {name: round((after[name] - self._before[name]) * 1000 / cycles, 1) for name in after}


def _copies(db: sqlite3.Connection) -> Counter[str]:
    return Counter(row[0] for row in db.execute("SELECT message_id FROM deliveries"))


async def _bare_round(bench: Bench, workers: int, total: int, concurrency: int) -> dict[str, Any]:
    queue = f"bare-cycles-{workers}-{uuid.uuid4().hex[:6]}"
    processes = [_spawn(bench, ["-m", "benchmarks.bare_worker", bench.dev.address, queue]) for _ in range(workers)]
    results: dict[int, str] = {}
    try:
        await _polling(bench, queue, [p.pid for p in processes])
        cpu = _Cpu({"workers": [p.pid for p in processes], "Temporal server": [bench.dev.pid]})

        async def bare(i: int) -> None:
            payload = bare_payload(i)
            handle = await bench.temporal.start_workflow(
                BareSendWorkflow.run, payload, id=f"cycle-{uuid.uuid4().hex}", task_queue=queue
            )
            await handle.signal(BareSendWorkflow.approve)
            results[i] = await handle.result()

        seconds = await _pool(total, concurrency, bare)
        cpu_ms = cpu.per_cycle_ms(total)
    finally:
        _stop(processes)
    lost = sum(1 for i in range(total) if results.get(i) != str(i))
    return {"seconds": seconds, "lost": lost, "cpu_ms_per_cycle": cpu_ms}


async def _mailgate_round(
    bench: Bench,
    db: sqlite3.Connection,
    workers: list[int],
    total: int,
    concurrency: int,
    refused: list[str],
    phases: dict[str, list[float]],
) -> dict[str, Any]:
    before = _copies(db)
    cpu = _Cpu({"front door": [bench.serve.pid], "workers": workers, "Temporal server": [bench.dev.pid]})
    message_ids: list[str] = []
    async with bench.mcp_http() as client, bench.api() as api:

        async def cycle(i: int) -> None:
            start = time.perf_counter()
            sent = await client.call_tool(
                "durable_send",
                {
                    "mailbox": MAILBOX,
                    "to": ["bob@example.com"],
                    "subject": f"cycle {i}",
                    "body": "b",
                    "idempotency_key": f"cycles-{uuid.uuid4().hex}",
                },
            )
            data = sent.structured_content or {}
            if sent.is_error or "send_id" not in data:
                refused.append(f"durable_send: {sent.content}")
                return
            message_ids.append(str(data["message_id"]))
            sent_at = time.perf_counter()
            phases["send"].append(sent_at - start)
            approved = await api.post(f"/api/approvals/{data['send_id']}/approve", json={"approver": "bench"})
            approved_at = time.perf_counter()
            phases["approve"].append(approved_at - sent_at)
            if approved.status_code != 200:
                # Counted, never retried: a refused approval is what issue 20 is about.
                refused.append(f"{approved.status_code} {approved.text[:200]}")
                return
            # Waiting as the bare cycle waits: for the workflow's result (a long poll), not by
            # polling the sandbox, whose CPU would count against mailgate on these two cores.
            # Whether it was delivered, once, is read from the sandbox after the round.
            await bench.temporal.get_workflow_handle(str(data["send_id"])).result()
            phases["deliver"].append(time.perf_counter() - approved_at)

        seconds = await _pool(total, concurrency, cycle)
    cpu_ms = cpu.per_cycle_ms(total)
    copies = _copies(db) - before
    return {
        "seconds": seconds,
        "lost": total - sum(1 for m in set(message_ids) if copies[m]),
        "duplicates": sum(n - 1 for n in copies.values()),
        "cpu_ms_per_cycle": cpu_ms,
    }


def _both(halves: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """Two equal halves as one round: their cycles over their time, counts summed, CPU averaged."""
    cpu = [half["cpu_ms_per_cycle"] for half in halves]
    return {
        "per_s": round(total / sum(half["seconds"] for half in halves), 1),
        "lost": sum(half["lost"] for half in halves),
        "duplicates": sum(half.get("duplicates", 0) for half in halves),
        "cpu_ms_per_cycle": {name: round(sum(c[name] for c in cpu) / len(cpu), 1) for name in cpu[0]},
    }


async def approval_cycles_by_workers(
    bench: Bench, total: int = 200, concurrency: int = 20, counts: tuple[int, ...] = WORKER_COUNTS
) -> dict[str, Any]:
    """One row per worker-process count: mailgate and bare cycles/s, and each as a ratio to one process."""
    if not bench.worker_process:
        raise RuntimeError("approval cycles by workers need serve's worker in a process of its own (the default)")
    db = sqlite3.connect(bench.data_dir / "sandbox.db", timeout=30)
    task_queue = bench.env["MAILGATE_TASK_QUEUE"]
    extra: list[subprocess.Popen[bytes]] = []
    refused: list[str] = []
    rows: dict[str, Any] = {}
    try:
        for workers in counts:
            while 1 + len(extra) < workers:
                extra.append(_spawn(bench, ["-m", "server.cli", "worker"]))
            worker_pids = [*children(bench.serve.pid)[:1], *(p.pid for p in extra)]
            await _polling(bench, task_queue, worker_pids)
            refused_before = len(refused)
            # Bare, mailgate, mailgate, bare (half the cycles each): a load that drifts during the
            # round (other people's work on these cores) weighs on both sides alike.
            half = total // 2
            phases: dict[str, list[float]] = {"send": [], "approve": [], "deliver": []}
            bare_halves = [await _bare_round(bench, workers, half, concurrency)]
            mailgate_halves = [
                await _mailgate_round(bench, db, worker_pids, half, concurrency, refused, phases) for _ in range(2)
            ]
            bare_halves.append(await _bare_round(bench, workers, half, concurrency))
            bare, mailgate = _both(bare_halves, 2 * half), _both(mailgate_halves, 2 * half)
            # Where a cycle's time goes (p50 / p99 ms of each step), to read beside the profile.
            mailgate["steps"] = {name: summary(samples) for name, samples in phases.items() if samples}
            rows[str(workers)] = {
                "bare_per_s": bare["per_s"],
                "bare_lost": bare["lost"],
                "mailgate_per_s": mailgate["per_s"],
                "lost": mailgate["lost"],
                "duplicates": mailgate["duplicates"],
                "approvals_refused": len(refused) - refused_before,
                "ratio": round(mailgate["per_s"] / bare["per_s"], 2),
                "steps": mailgate["steps"],
                "cpu_ms_per_cycle": mailgate["cpu_ms_per_cycle"],
                "bare_cpu_ms_per_cycle": bare["cpu_ms_per_cycle"],
            }
            print(f"  {workers} worker process(es): {rows[str(workers)]}", file=sys.stderr, flush=True)
    finally:
        _stop(extra)
        db.close()
    one = rows[str(counts[0])]
    for row in rows.values():
        row["mailgate_vs_one"] = round(row["mailgate_per_s"] / one["mailgate_per_s"], 2)
        row["bare_vs_one"] = round(row["bare_per_s"] / one["bare_per_s"], 2)
    return {
        "concurrency": concurrency,
        "cycles": total,
        "layout": "mailgate serve (front door + its worker process) plus mailgate worker processes",
        "workers": rows,
        "refusals": refused[:10],
        "goal": ">= 0.85x bare with as many worker processes, 0 lost, 0 duplicates",
    }


def one_worker(by_workers: dict[str, Any]) -> dict[str, Any]:
    """The one-worker row in the shape of the `approval_cycles` results (the table's main row)."""
    row = by_workers["workers"]["1"]
    return {
        "concurrency": by_workers["concurrency"],
        "cycles": by_workers["cycles"],
        "bare_per_s": row["bare_per_s"],
        "mailgate_per_s": row["mailgate_per_s"],
        "ratio": row["ratio"],
        "lost": row["lost"],
        "duplicates": row["duplicates"],
        "approvals_refused": row["approvals_refused"],
        "goal": by_workers["goal"],
    }
