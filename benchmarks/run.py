"""Regenerate every performance figure: JSON, a Markdown table, a chart and the table in docs/benchmarks.md.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python -m benchmarks.run            # the full run (about 10 minutes here)
    .venv/bin/python -m benchmarks.run --quick    # smaller counts, for a smoke test
    .venv/bin/python -m benchmarks.run --only cycles --keep   # one part; the others keep their figures

Each figure is measured beside its bare-Temporal counterpart in the same run, on the same
Temporal server: timings on a shared machine are noisy, ratios are what count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from benchmarks.cycles import approval_cycles_by_workers, one_worker
from benchmarks.harness import ROOT, bench_stack, machine
from benchmarks.latency import send_latency
from benchmarks.reading import reading
from benchmarks.report import chart, markdown, update_page
from benchmarks.scale import waiting_at_scale
from benchmarks.throughput import approval_cycles
from benchmarks.tools_list_size import measure as tools_list_size

OUT = ROOT / "benchmarks"


async def run(quick: bool, only: set[str]) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    async with bench_stack() as bench:
        if "latency" in only:
            print("send latency ...", file=sys.stderr, flush=True)
            results["send_latency"] = await send_latency(bench, calls=60 if quick else 300)
        if "cycles" in only or "throughput" in only:
            print("approval cycles with 1, 2 and 3 worker processes ...", file=sys.stderr, flush=True)
            by_workers = await approval_cycles_by_workers(bench, total=40 if quick else 200)
            results["cycles_by_workers"] = by_workers
            results["approval_cycles"] = one_worker(by_workers)
        if "cost" in only:
            print("agent cost ...", file=sys.stderr, flush=True)
            size = await asyncio.to_thread(tools_list_size, bench.data_dir)
            results["agent_cost"] = {"tools_list_bytes": size["wire_bytes"], "tools": size["tools"]}
        if "reading" in only:
            print("reading (10,000 messages, a 500-message thread) ...", file=sys.stderr, flush=True)
            results["reading"], answer_sizes = await reading(bench)
            results.setdefault("agent_cost", {}).update(answer_sizes)
        if "scale" in only and not quick:
            print("waiting at scale (this takes a few minutes) ...", file=sys.stderr, flush=True)
            results["waiting_at_scale"] = await waiting_at_scale(bench)
    if "layout" in only:
        # The same measures with serve's worker in serve's own process (as before issue 20).
        print("worker in the serve process ...", file=sys.stderr, flush=True)
        async with bench_stack({"MAILGATE_WORKER_PROCESS": "false"}) as bench:
            results["in_process_worker"] = {
                "send_latency": await send_latency(bench, calls=60 if quick else 300),
                "approval_cycles": await approval_cycles(bench, total=40 if quick else 200),
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts, no 10,000-send scale run")
    parser.add_argument(
        "--only", default="latency,cycles,cost,reading,scale,layout", help="comma-separated parts to run"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the table in docs/benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="keep the figures of parts not run from results.json")
    args = parser.parse_args()
    results = asyncio.run(run(args.quick, set(args.only.split(","))))
    previous_file = OUT / "results.json"
    if args.keep and previous_file.exists():
        # Parts not run now keep their figures from the run that measured them, and say so.
        previous = json.loads(previous_file.read_text())
        kept = [key for key in previous if key not in results and key not in ("machine", "started", "kept")]
        for key in kept:
            results[key] = previous[key]
        if kept:
            results["kept"] = {"from": previous.get("kept", {}).get("from", previous["started"]), "parts": kept}
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (OUT / "results.md").write_text(table)
    chart(results, OUT / "chart.png")
    if not args.no_docs and not args.quick:
        update_page(ROOT / "docs" / "benchmarks.md", table)
    print(table)
    sys.stdout.flush()
    os._exit(0)  # temporalio's threads can crash interpreter finalization


if __name__ == "__main__":
    main()
