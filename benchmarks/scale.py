"""Waiting at scale: worker memory, the pending list and one approval with 1,000 and 10,000 waiting."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle

from benchmarks.bare import BareSendWorkflow, bare_payload
from benchmarks.harness import MAILBOX, ROOT, Bench, rss_mb, send_waiting, settle, summary, timed, tree_rss_mb
from server.settings import Settings

STEPS = (1_000, 10_000)


async def _fill(target: int, have: int, start: Any, concurrency: int = 32) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with gate:
            return await start(i)

    return list(await asyncio.gather(*(one(i) for i in range(have, target))))


# Each call returns the workflow it decided; `_alone` waits, untimed, until that one has finished.
Decide = Callable[[], Awaitable[WorkflowHandle[Any, Any]]]


def _approver(
    api: httpx.AsyncClient, temporal: Client, send_ids: Iterator[str], approver: str | None = "bench"
) -> Decide:
    body = {"approver": approver} if approver else {}

    async def approve_one() -> WorkflowHandle[Any, Any]:
        send_id = next(send_ids)
        response = await api.post(f"/api/approvals/{send_id}/approve", json=body)
        response.raise_for_status()
        return temporal.get_workflow_handle(send_id)

    return approve_one


def _signaller(handles: Iterator[WorkflowHandle[Any, Any]]) -> Decide:
    async def signal_one() -> WorkflowHandle[Any, Any]:
        handle = next(handles)
        await handle.signal(BareSendWorkflow.approve)
        return handle

    return signal_one


def _updater(handles: Iterator[WorkflowHandle[Any, Any]]) -> Decide:
    async def update_one() -> WorkflowHandle[Any, Any]:
        handle = next(handles)
        await handle.execute_update(BareSendWorkflow.approve_answered)
        return handle

    return update_one


async def _alone(calls: dict[str, Decide], n: int, warmup: int = 2) -> dict[str, list[float]]:
    """Each approval timed on its own, the kinds interleaved round by round.

    Before the next call, the decided workflow finishes (untimed): what an approval sets off
    (mailgate's delivery, bare's activity) is not charged to the next approval, and load that
    drifts on a shared machine weighs on every kind alike. Timed back to back, mailgate's
    delivery of the previous send (an activity with a mailbox check, MIME and SQLite writes,
    and two more workflow tasks) ran during the next approval; bare's activity returns at once.
    """
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(warmup + n):
        for name, call in calls.items():
            start = time.perf_counter()
            handle = await call()
            if i >= warmup:
                samples[name].append(time.perf_counter() - start)
            await handle.result()
    return samples


async def waiting_at_scale(bench: Bench) -> dict[str, Any]:
    # The bare worker caches as many workflows as mailgate's (MAILGATE_WORKFLOW_CACHE), not
    # Temporal's default 1,000: with 1,000 waiting, bare kept every one and mailgate a fraction.
    cache = bench.env.get("MAILGATE_WORKFLOW_CACHE") or str(Settings.model_fields["workflow_cache"].default)
    bare_worker = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bare_worker", bench.dev.address, "bare-scale", cache],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    results: dict[str, Any] = {}
    # A person's API token, as people approve (the admin token is break glass): the front door
    # then looks up who may decide the send before the update.
    person = subprocess.run(
        [sys.executable, "-m", "server.cli", "people", "add", "approver@example.com", "--approves", MAILBOX, "--json"],
        cwd=ROOT,
        env=bench.env,
        capture_output=True,
        check=True,
    )
    person_token = json.loads(person.stdout)["api_token"]
    try:
        async with (
            bench.mcp_http() as client,
            bench.api() as api,
            httpx.AsyncClient(
                base_url=bench.url, headers={"Authorization": f"Bearer {person_token}"}, timeout=60
            ) as person_api,
        ):

            async def send(i: int) -> str:
                return await send_waiting(client, i)

            async def bare(i: int) -> Any:
                return await bench.temporal.start_workflow(
                    BareSendWorkflow.run, bare_payload(i), id=f"scale-{uuid.uuid4().hex}", task_queue="bare-scale"
                )

            sends: list[str] = []
            bares: list[Any] = []
            for step in STEPS:
                previous = len(sends)
                sends += await _fill(step, len(sends), send)
                bares += await _fill(step, len(bares), bare)
                settled = await settle(*bench.mailgate_pids(), bare_worker.pid, bench.dev.pid)

                async def first_page() -> None:
                    page = await api.get("/api/approvals", params={"status": "pending", "limit": 50})
                    page.raise_for_status()

                async def bare_page() -> None:
                    query = "WorkflowType = 'BareSendWorkflow' AND ExecutionStatus = 'Running'"
                    await bench.temporal.list_workflows(query, page_size=50).fetch_next_page()

                # Approve among the sends added for this step: earlier ones may be decided already.
                fresh, fresh_bare = sends[previous:], bares[previous:]
                spread = fresh[:: max(1, len(fresh) // 80)]
                every = max(2, len(fresh_bare) // 40)
                results[str(step)] = {
                    "settle_s": settled,
                    # Every mailgate process: serve and the worker process it starts.
                    "worker_rss_mb": tree_rss_mb(bench.serve.pid),
                    # Which process holds it: serve (front door) first, then its worker process.
                    "rss_by_process_mb": [rss_mb(pid) for pid in bench.mailgate_pids()],
                    "bare_worker_rss_mb": rss_mb(bare_worker.pid),
                    "first_page": summary(await timed(first_page, 30, warmup=3)),
                    "bare_first_page": summary(await timed(bare_page, 30, warmup=3)),
                }
                approvals = await _alone(
                    {
                        "approve_one": _approver(api, bench.temporal, iter(spread[0::2])),
                        "approve_one_person": _approver(person_api, bench.temporal, iter(spread[1::2]), approver=None),
                        "bare_signal": _signaller(iter(fresh_bare[::every])),
                        "bare_update": _updater(iter(fresh_bare[every // 2 :: every])),
                    },
                    20,
                )
                results[str(step)].update({name: summary(samples) for name, samples in approvals.items()})
                step_result = results[str(step)]
                step_result["approve_ratio"] = round(
                    step_result["approve_one"]["p50_ms"] / step_result["bare_signal"]["p50_ms"], 2
                )
    finally:
        bare_worker.terminate()
        bare_worker.wait(30)
    results["goal"] = "RSS <= 300 MB, +10 MB per 1,000; first page p50 <= 100 ms; approve <= 1.25x a bare update"
    return results
