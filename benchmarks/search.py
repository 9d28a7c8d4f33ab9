"""search_email beside check_inbox on the sandbox index, at 10,000 and 100,000 messages, and the
index's size on disk. Measured at the store (what the tools call, without MCP's own overhead):

    .venv/bin/python -m benchmarks.search              # 10,000 messages
    .venv/bin/python -m benchmarks.search --sizes 10000,100000 --write   # also benchmarks/search_results.md

The corpus is generated and written straight into the index (tests/support/search_corpus.py).
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

from tests.support.search_corpus import bulk_insert, generate
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
            bulk_insert(store, generate(min(10_000, size - start), MAILBOX, seed=start, offset=start))
        store.db.query("PRAGMA wal_checkpoint(TRUNCATE)")
        [row] = store.db.query("SELECT count(*) FROM messages_fts_data")
        fts_pages = row[0]
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


RESULTS = Path(__file__).parent / "search_results.md"


def markdown(reports: list[dict[str, Any]], started: str) -> str:
    """The reports as a table: one column per corpus size, p50 / p99 in ms."""
    sizes = [r["messages"] for r in reports]
    lines = [
        "# search_email and check_inbox at the store",
        "",
        f"`python -m benchmarks.search --sizes {','.join(map(str, sizes))}`, measured {started} on this shared 2-core",
        "machine (generated corpus, tests/workflows/search_corpus.py; p50 / p99 in ms). Goal: search p50 <= 50 ms",
        "at 100,000 messages.",
        "",
        "| measure | " + " | ".join(f"{n:,} messages" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
        "| database with its FTS5 index on disk | "
        + " | ".join(f"{r['db_bytes'] / 1e6:.1f} MB" for r in reports)
        + " |",
    ]
    for key, value in reports[0].items():
        if isinstance(value, dict):
            cells = [f"{r[key]['p50_ms']} / {r[key]['p99_ms']}" for r in reports]
            lines.append(f"| {key.replace('|', '/')} | " + " | ".join(cells) + " |")
    over = "search_email, p50 over the queries"
    lines.append(f"| **{over}** | " + " | ".join(f"**{r[over]}**" for r in reports) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000", help="comma-separated message counts")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--write", action="store_true", help=f"also write {RESULTS.name}")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    reports = []
    for size in (int(s) for s in args.sizes.split(",")):
        reports.append(measure(size, args.rounds))
        print(json.dumps(reports[-1], indent=2), flush=True)
    if args.write:
        RESULTS.write_text(markdown(reports, started))


if __name__ == "__main__":
    main()
