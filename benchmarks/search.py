"""search_email beside check_inbox on the sandbox index, at 10,000 and 100,000 messages, and the
index's size on disk. Measured at the store (what the tools call, without MCP's own overhead):

    .venv/bin/python -m benchmarks.search              # 10,000 messages
    .venv/bin/python -m benchmarks.search --sizes 10000,100000

The corpus is generated and written straight into the index (tests/workflows/search_corpus.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.workflows.search_corpus import bulk_insert, generate
from workflows.providers.sandbox.store import SandboxStore
from workflows.read_models import EmailQuery

MAILBOX = "bench@mailgate.local"
QUERIES = (
    "invoice",
    '"budget review"',
    "meeting from:example3.com",
    "subject:launch is:unread",
    "w17 w42 after:2026-03-01",
    "label:urgent has:attachment",
)


def _times(call: Callable[[], Any], rounds: int) -> dict[str, float]:
    taken = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        taken.append((time.perf_counter() - start) * 1000)
    taken.sort()
    return {"p50_ms": round(statistics.median(taken), 2), "p99_ms": round(taken[int(len(taken) * 0.99) - 1], 2)}


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def measure(size: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sandbox.db"
        store = SandboxStore(path)
        for start in range(0, size, 10_000):  # in batches: one transaction each
            bulk_insert(store, generate(min(10_000, size - start), MAILBOX, seed=start))
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with store._tx() as db:
            fts_pages = db.execute("SELECT count(*) FROM messages_fts_data").fetchone()[0]
        report: dict[str, Any] = {"messages": size, "db_bytes": _disk(path), "fts_data_pages": fts_pages}
        report["check_inbox, 20 newest"] = _times(lambda: store.list_emails(MAILBOX, EmailQuery(limit=20)), rounds)
        report["check_inbox, query 'invoice'"] = _times(
            lambda: store.list_emails(MAILBOX, EmailQuery(limit=20, search="invoice")), rounds
        )
        every = []
        for query in QUERIES:
            every.append(_times(lambda query=query: store.search(MAILBOX, query, 20, None), rounds))  # type: ignore[misc]
            report[f"search_email {query!r}"] = every[-1]
        report["search_email, p50 over the queries"] = round(statistics.median(t["p50_ms"] for t in every), 2)
        store.close()
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000", help="comma-separated message counts")
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        print(json.dumps(measure(size, args.rounds), indent=2))


if __name__ == "__main__":
    main()
