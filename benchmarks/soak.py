"""A longer soak than CI allows: sends, approvals and SIGKILLs at random, for as long as you like.

    .venv/bin/python -m benchmarks.soak --minutes 30

Each round starts `mailgate serve`, submits sends through MCP (every call retried with its
idempotency key until it answers, as an agent would), approves what waits through the approver
API, and at a random moment SIGKILLs the worker's process group, the Temporal dev server, or
both. At the end the stack comes up once more, everything is submitted again (idempotently)
and approved, and the sandbox must hold each send exactly once. Prints a JSON summary; exits 1
if anything was lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.serve import Serve

RECIPIENT = "soak@example.com"


def kill(stack: Serve, what: str) -> None:
    """SIGKILL the serve process group (worker, HTTP, MCP), its Temporal dev server, or both."""
    assert stack.process is not None
    if what in ("stack", "both"):
        os.killpg(stack.process.pid, signal.SIGKILL)
        stack.process.wait()
    if what in ("temporal", "both"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(stack.temporal_pid(), signal.SIGKILL)
    if what == "temporal":
        time.sleep(3)  # serve restarts its dev server; give it a moment before the next round


def delivered(data_dir: Path) -> Counter[str]:
    db = sqlite3.connect(data_dir / "sandbox.db", timeout=30)
    try:
        return Counter(row[0] for row in db.execute("SELECT subject FROM deliveries WHERE recipient = ?", (RECIPIENT,)))
    finally:
        db.close()


async def soak(minutes: float, per_round: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    kills: Counter[str] = Counter()
    keys: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mailgate-soak-") as scratch:
        stack = Serve(Path(scratch))
        stop_at = time.monotonic() + minutes * 60
        rounds = 0
        while time.monotonic() < stop_at:
            if stack.process is None or stack.process.poll() is not None:
                stack.start()
            batch = [f"soak-{rounds}-{i}" for i in range(per_round)]
            keys += batch
            task = asyncio.create_task(stack.submit_and_approve(batch, to=RECIPIENT))
            await asyncio.sleep(rng.uniform(0.5, 6.0))
            what = rng.choice(["stack", "temporal", "both"])
            kill(stack, what)
            kills[what] += 1
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            rounds += 1
        if stack.process is None or stack.process.poll() is not None:
            stack.start()
        await stack.submit_and_approve(keys, to=RECIPIENT)
        deadline = time.monotonic() + 300
        while len(delivered(stack.data_dir)) < len(keys) and time.monotonic() < deadline:
            await asyncio.sleep(1)
        await asyncio.sleep(2)
        copies = delivered(stack.data_dir)
        stack.stop()
        with contextlib.suppress(OSError, ValueError, KeyError, ProcessLookupError):
            os.kill(stack.temporal_pid(), signal.SIGKILL)
    return {
        "minutes": minutes,
        "rounds": rounds,
        "sends": len(keys),
        "kills": dict(kills),
        "delivered": len(copies),
        "lost": len(set(keys) - set(copies)),
        "duplicates": sum(n - 1 for n in copies.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--per-round", type=int, default=20, help="sends submitted between two kills")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    report = asyncio.run(soak(args.minutes, args.per_round, args.seed))
    print(json.dumps(report, indent=2))
    sys.stdout.flush()
    os._exit(1 if report["lost"] or report["duplicates"] else 0)


if __name__ == "__main__":
    main()
