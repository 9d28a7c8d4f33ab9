"""Send latency: `durable_send` over MCP (streamable HTTP, stdio) against a bare `start_workflow`
and against the thin baseline (an MCP server whose tool only starts a one-signal workflow)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from mcp import Client

from benchmarks.bare import BareSendWorkflow, bare_payload
from benchmarks.harness import MAILBOX, Bench, summary, timed

ROUNDS = 3


def _sender(client: Client, label: str) -> Any:
    counter = itertools.count()

    async def send() -> None:
        i = next(counter)
        result = await client.call_tool(
            "durable_send",
            {
                "mailbox": MAILBOX,
                "to": ["Bob <bob@example.com>"],
                "subject": f"Benchmark {i}",
                "body": "Hello Bob,\n\nthe numbers are in.\n\nBest,\nthe agent\n" * 3,
                "idempotency_key": f"{label}-{uuid.uuid4().hex}",
            },
        )
        if result.is_error:
            raise RuntimeError(f"durable_send failed: {result.content}")

    return send


async def send_latency(bench: Bench, calls: int = 300) -> dict[str, Any]:
    per_round = calls // ROUNDS
    names = ("bare", "thin_http", "thin_stdio", "mcp_http", "mcp_stdio")
    samples: dict[str, list[float]] = {name: [] for name in names}
    async with (
        bench.bare_worker() as queue,
        bench.mcp_http() as http,
        bench.mcp_stdio() as stdio,
        bench.thin_http() as thin_http,
        bench.thin_stdio() as thin_stdio,
    ):
        counter = itertools.count()

        async def bare() -> None:
            i = next(counter)
            await bench.temporal.start_workflow(
                BareSendWorkflow.run, bare_payload(i), id=f"bare-{uuid.uuid4().hex}", task_queue=queue
            )

        senders = {
            "bare": bare,
            "thin_http": _sender(thin_http, "thin-http"),
            "thin_stdio": _sender(thin_stdio, "thin-stdio"),
            "mcp_http": _sender(http, "http"),
            "mcp_stdio": _sender(stdio, "stdio"),
        }
        # Interleaved rounds, so drift on a shared machine hits every variant alike.
        for _ in range(ROUNDS):
            for name, call in senders.items():
                samples[name] += await timed(call, per_round, warmup=10)
    result: dict[str, Any] = {name: summary(values) for name, values in samples.items()}
    bare_p50 = result["bare"]["p50_ms"]
    for name in ("thin_http", "thin_stdio", "mcp_http", "mcp_stdio"):
        result[name]["ratio_p50"] = round(result[name]["p50_ms"] / bare_p50, 2)
        result[name]["ratio_p99"] = round(result[name]["p99_ms"] / result["bare"]["p99_ms"], 2)
    for name, thin in (("mcp_http", "thin_http"), ("mcp_stdio", "thin_stdio")):
        result[name]["ratio_thin_p50"] = round(result[name]["p50_ms"] / result[thin]["p50_ms"], 2)
    result["goal"] = "mailgate p50 <= 1.15x the thin MCP baseline and <= 1.5x bare start_workflow"
    return result
