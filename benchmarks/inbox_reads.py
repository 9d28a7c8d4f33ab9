"""check_inbox on a 10,000-message mailbox and get_thread on a 500-message thread, p50/p95.

Runs the Inbox service over a real sandbox store (no Temporal: the mailbox check is stubbed,
as it is cached after the first call in a running server). Usage:

    .venv/bin/python benchmarks/inbox_reads.py [--messages 10000] [--thread 500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from server.inbox import Inbox
from workflows.models import MailboxConfig
from workflows.providers.base import ProviderSet
from workflows.providers.sandbox import SandboxProvider, SandboxStore

BOX = "bench@mailgate.local"


class KnownMailboxes:
    async def config(self, address: str) -> MailboxConfig:
        return MailboxConfig(address=address)


def raw(n: int, subject: str, parent: int | None = None, body: str = "") -> bytes:
    refs = f"In-Reply-To: <t{parent}@example.com>\r\nReferences: <t0@example.com> <t{parent}@example.com>\r\n"
    text = body or f"Hello, this is message {n}. " * 20
    return (
        f"Message-ID: <{'t' if parent is not None or subject == 'Thread' else 'm'}{n}@example.com>\r\n"
        f"From: Sender {n % 50} <s{n % 50}@example.com>\r\nTo: {BOX}\r\nSubject: {subject}\r\n"
        + (refs if parent is not None else "")
        + f"\r\n{text}\r\n"
    ).encode()


def timed(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"p50 {statistics.median(ms):6.2f} ms  p95 {ms[int(len(ms) * 0.95) - 1]:6.2f} ms  (n={len(ms)})"


async def measure(label: str, call: Any, runs: int = 200) -> None:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    print(f"{label:<48} {timed(samples)}")


async def main(messages: int, thread: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = SandboxStore(Path(folder) / "sandbox.db")
        store.create_mailbox(BOX)
        start = time.perf_counter()
        for n in range(messages - thread):
            store.deliver(raw(n, f"Subject {n}"), "x@example.com", [BOX])
        store.deliver(raw(0, "Thread"), "x@example.com", [BOX])
        for n in range(1, thread):
            store.deliver(raw(n, "Re: Thread", parent=max(0, n - 1 - n % 3)), "x@example.com", [BOX])
        print(f"loaded {messages} messages in {time.perf_counter() - start:.1f} s")
        inbox = Inbox(None, None, ProviderSet(SandboxProvider(store)), KnownMailboxes(), None)  # type: ignore[arg-type]
        page = await inbox.check(BOX, query="Thread", limit=1)
        thread_id = page.emails[0].thread_id
        await measure("check_inbox (20 newest)", lambda: inbox.check(BOX))
        await measure("check_inbox unread_only", lambda: inbox.check(BOX, unread_only=True))
        await measure("check_inbox page 5 via cursor", lambda: _paged(inbox, 5))
        await measure("check_inbox sender filter", lambda: inbox.check(BOX, sender="s7@"))
        await measure("check_inbox full-text query (no hit)", lambda: inbox.check(BOX, query="zebra"), runs=50)
        await measure(f"get_thread ({thread} messages)", lambda: inbox.thread(BOX, thread_id), runs=50)


async def _paged(inbox: Inbox, pages: int) -> None:
    cursor = None
    for _ in range(pages):
        cursor = (await inbox.check(BOX, cursor=cursor)).next_cursor


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--thread", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.thread))
