"""Memory of each mailgate process at idle and with sends waiting, measured as the scale benchmark does.

    .venv/bin/python -m benchmarks.memory                      # idle, 1,000 and 10,000 pending
    .venv/bin/python -m benchmarks.memory --steps 1000         # idle and 1,000 only (a minute or two)
    MAILGATE_WORKFLOW_CACHE=300 .venv/bin/python -m benchmarks.memory --steps 1000 --approvals 20

Only the memory part of benchmarks/scale.py: the same stack (benchmarks/harness.py), the same
sends over MCP, the same settling before each reading. It prints, per process (serve's front
door, then its worker child), RSS (what the goal counts), PSS and USS (private pages) from
/proc/<pid>/smaps_rollup, and the anonymous part of RSS (heaps and arenas, not code). The
embedded Temporal dev server is not counted, as in the scale benchmark. MAILGATE_* variables set
when this runs reach serve (and its worker child) unchanged.

With --approvals N, after each reading it approves N of the sends just added, spread over them
as the scale benchmark does (most are out of the worker's cache then), and N of the newest (in
it): wall time and the CPU both mailgate processes spent per approval, to weigh a cache size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench, bench_stack, cpu_seconds, percentile, send_waiting, settle
from benchmarks.scale import _fill


def smaps(pid: int) -> dict[str, float]:
    """RSS, PSS, USS and anonymous RSS of one process, in MB."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value)
    mb = {
        "rss": fields["Rss"],
        "pss": fields["Pss"],
        "uss": fields["Private_Clean"] + fields["Private_Dirty"],
        "anon": fields["Anonymous"],
    }
    return {k: round(v / 1024, 1) for k, v in mb.items()}


def reading(bench: Bench) -> dict[str, Any]:
    by_process = {name: smaps(pid) for name, pid in zip(("serve", "worker"), bench.mailgate_pids(), strict=False)}
    return {"total_rss": round(sum(p["rss"] for p in by_process.values()), 1), **by_process}


async def approvals(bench: Bench, send_ids: list[str]) -> dict[str, float]:
    """Approve these sends one after another: p50 wall ms, and CPU ms of serve + worker per approval."""
    pids = bench.mailgate_pids()
    walls = []
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    async with bench.api() as api:
        for send_id in send_ids:
            start = time.perf_counter()
            response = await api.post(f"/api/approvals/{send_id}/approve", json={"approver": "bench"})
            response.raise_for_status()
            walls.append(time.perf_counter() - start)
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    return {
        "n": len(walls),
        "p50_ms": round(percentile(walls, 0.5) * 1000, 1),
        "cpu_ms_per_approval": round(cpu / len(walls) * 1000, 1),
    }


async def measure(steps: list[int], approve: int = 0) -> dict[str, Any]:
    extra = {k: v for k, v in os.environ.items() if k.startswith("MAILGATE_") or k.startswith("MALLOC_")}
    async with bench_stack(extra) as bench:
        results: dict[str, Any] = {"env": extra}
        results["settle_idle_s"] = await settle(*bench.mailgate_pids(), bench.dev.pid)
        results["idle"] = reading(bench)
        print(json.dumps({"idle": results["idle"]}), file=sys.stderr, flush=True)
        async with bench.mcp_http() as client:

            async def send(i: int) -> str:
                return await send_waiting(client, i)

            sends: list[str] = []
            for step in steps:
                fresh = await _fill(step, len(sends), send)
                sends += fresh
                results[f"settle_{step}_s"] = await settle(*bench.mailgate_pids(), bench.dev.pid)
                results[str(step)] = reading(bench)
                if approve:
                    spread = fresh[: -approve : max(1, (len(fresh) - approve) // approve)][:approve]
                    results[str(step)]["approve_spread"] = await approvals(bench, spread)
                    results[str(step)]["approve_newest"] = await approvals(bench, fresh[-approve:])
                print(json.dumps({str(step): results[str(step)]}), file=sys.stderr, flush=True)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="1000,10000", help="comma-separated pending counts to measure at")
    parser.add_argument("--approvals", type=int, default=0, help="approvals to time after each reading")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    print(json.dumps(asyncio.run(measure(steps, args.approvals)), indent=1))


if __name__ == "__main__":
    main()
