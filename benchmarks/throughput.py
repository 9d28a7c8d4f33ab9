"""Approval cycles per second with serve's worker in serve's own process (the `layout` part);
benchmarks/cycles.py measures the default layout with 1, 2 and 3 worker processes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections import Counter
from typing import Any

from benchmarks.bare import BareSendWorkflow, bare_payload
from benchmarks.harness import MAILBOX, Bench


def _delivered(db: sqlite3.Connection, message_id: str) -> bool:
    return db.execute("SELECT 1 FROM deliveries WHERE message_id = ?", (message_id,)).fetchone() is not None


def _copies(db: sqlite3.Connection) -> Counter[str]:
    return Counter(row[0] for row in db.execute("SELECT message_id FROM deliveries"))


async def _pool(total: int, concurrency: int, cycle: Any) -> float:
    """Run `total` cycles, `concurrency` at a time; returns cycles per second."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await cycle(i)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    return total / (time.perf_counter() - start)


async def approval_cycles(bench: Bench, total: int = 200, concurrency: int = 20) -> dict[str, Any]:
    db = sqlite3.connect(bench.data_dir / "sandbox.db", timeout=30)
    before = _copies(db)
    delivered: list[str] = []
    refused: list[str] = []
    async with bench.bare_worker("bare-cycle") as queue, bench.mcp_http() as client, bench.api() as api:

        async def bare(i: int) -> None:
            handle = await bench.temporal.start_workflow(
                BareSendWorkflow.run, bare_payload(i), id=f"cycle-{uuid.uuid4().hex}", task_queue=queue
            )
            await handle.signal(BareSendWorkflow.approve)
            await handle.result()

        async def mailgate(i: int) -> None:
            sent = await client.call_tool(
                "durable_send",
                {
                    "mailbox": MAILBOX,
                    "to": ["bob@example.com"],
                    "subject": f"cycle {i}",
                    "body": "b",
                    "idempotency_key": f"cycle-{uuid.uuid4().hex}",
                },
            )
            data = sent.structured_content or {}
            approved = await api.post(f"/api/approvals/{data['send_id']}/approve", json={"approver": "bench"})
            if approved.status_code != 200:
                # Counted, never retried: a refused approval is a lost cycle (issue 20).
                refused.append(f"{approved.status_code} {approved.text[:200]}")
                return
            # As the bare cycle waits (benchmarks/cycles.py says why); delivery is checked after.
            await bench.temporal.get_workflow_handle(str(data["send_id"])).result()
            if _delivered(db, str(data["message_id"])):
                delivered.append(str(data["message_id"]))

        bare_rate = await _pool(total, concurrency, bare)
        mailgate_rate = await _pool(total, concurrency, mailgate)
    copies = _copies(db) - before
    return {
        "concurrency": concurrency,
        "cycles": total,
        "bare_per_s": round(bare_rate, 1),
        "mailgate_per_s": round(mailgate_rate, 1),
        "ratio": round(mailgate_rate / bare_rate, 2),
        "lost": total - len(set(delivered)),
        "duplicates": sum(n - 1 for n in copies.values()),
        "approvals_refused": len(refused),
        "refusals": refused[:10],
        "goal": ">= 0.85x bare, 0 lost, 0 duplicates",
    }
