"""Give memory freed after a burst of work back to the OS.

glibc keeps the memory a burst frees (a thousand sends started, their workflow tasks run) in its
heaps, where it still counts in the process's RSS, until `malloc_trim` hands the free pages back.
serve and `mailgate worker` each trim once when they go quiet after such a burst: about 4 MB of
the front door's RSS and 7 MB of the worker's with 1,000 sends waiting (`benchmarks/memory.py`).
Nothing is trimmed while the process is busy, nor again while it stays idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import time
from collections.abc import Callable
from dataclasses import dataclass

CHECK_EVERY = 1.0  # seconds between looks at the process's CPU time
QUIET = 0.05  # under this share of one core over CHECK_EVERY: the process is quiet
BURST = 1.0  # CPU seconds of work since the last trim that make another worth it


@dataclass
class TrimAfterBursts:
    """When to trim, from the process's CPU time: once a quiet interval follows a burst."""

    worked: float = 0.0  # CPU seconds since the last trim

    def quiet_now(self, used: float, interval: float) -> bool:
        """Given the CPU seconds used over the last ``interval``, whether to trim now."""
        self.worked += used
        if used >= QUIET * interval or self.worked < BURST:
            return False
        self.worked = 0.0
        return True


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    with contextlib.suppress(OSError, AttributeError):
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
        return trim
    return None


async def trim_after_bursts() -> None:
    """Run for the life of the process (cancel it to stop)."""
    trim = malloc_trim()
    if trim is None:
        return
    policy = TrimAfterBursts()
    before = time.process_time()  # every thread's CPU time: the Temporal core's too
    while True:
        await asyncio.sleep(CHECK_EVERY)
        now = time.process_time()
        if policy.quiet_now(now - before, CHECK_EVERY):
            await asyncio.to_thread(trim, 0)
            now = time.process_time()  # the trim's own CPU is not work
        before = now
