"""Reading: `check_inbox` and `get_thread` through MCP over streamable HTTP, as an agent calls them.

Reads do not touch Temporal, so there is no bare counterpart; what matters is that the time
stays flat as the mailbox grows (1,000 then 10,000 messages) and a 500-message thread reads fast.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mcp import Client

from benchmarks.harness import MAILBOX, Bench, summary, timed
from workflows.providers.sandbox.store import SandboxStore

THREAD = 500


def _raw(n: int, subject: str, parent: int | None = None) -> bytes:
    refs = f"In-Reply-To: <t{parent}@example.com>\r\nReferences: <t0@example.com> <t{parent}@example.com>\r\n"
    kind = "t" if subject.endswith("Thread") else "m"
    return (
        f"Message-ID: <{kind}{n}@example.com>\r\nFrom: Sender {n % 50} <s{n % 50}@example.com>\r\n"
        f"To: {MAILBOX}\r\nSubject: {subject}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        + (refs if parent is not None else "")
        + "\r\n"
        + f"Hello, this is message {n}. " * 20
        + "\r\n"
    ).encode()


def _fill(store: SandboxStore, start: int, end: int) -> None:
    for n in range(start, end):
        store.deliver(_raw(n, f"Subject {n}"), "x@example.com", [MAILBOX])


def _thread(store: SandboxStore) -> None:
    store.deliver(_raw(0, "Thread"), "x@example.com", [MAILBOX])
    for n in range(1, THREAD):
        store.deliver(_raw(n, "Re: Thread", parent=max(0, n - 1 - n % 3)), "x@example.com", [MAILBOX])


def _size(result: Any) -> int:
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


async def reading(bench: Bench) -> tuple[dict[str, Any], dict[str, int]]:
    store = SandboxStore(bench.data_dir / "sandbox.db")
    await asyncio.to_thread(_thread, store)
    results: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    async with bench.mcp_http() as client:
        thread_id = await _thread_id(client)
        have = THREAD
        for total in (1_000, 10_000):
            await asyncio.to_thread(_fill, store, have, total)
            have = total

            async def check() -> None:
                await client.call_tool("check_inbox", {"mailbox": MAILBOX})

            results[f"check_inbox, 20 newest of {total:,}"] = summary(await timed(check, 100, warmup=5))

        async def thread() -> None:
            await client.call_tool("get_thread", {"mailbox": MAILBOX, "thread_id": thread_id})

        results[f"get_thread, {THREAD} messages"] = summary(await timed(thread, 30, warmup=2))
        for response_format in ("concise", "detailed"):
            answer = await client.call_tool("check_inbox", {"mailbox": MAILBOX, "response_format": response_format})
            sizes[f"check_inbox_{response_format}_bytes"] = _size(answer)
    store.close()
    return results, sizes


async def _thread_id(client: Client) -> str:
    page = await client.call_tool("check_inbox", {"mailbox": MAILBOX, "query": "Thread", "limit": 1})
    return str((page.structured_content or {})["emails"][0]["thread_id"])
