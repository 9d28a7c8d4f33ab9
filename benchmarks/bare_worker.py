"""A bare Temporal worker in its own process, so its memory can be measured beside mailgate's."""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from benchmarks.bare import BareSendWorkflow, bare_deliver
from workflows.temporal import data_converter


async def main(address: str, task_queue: str, cached_workflows: int) -> None:
    client = await Client.connect(address, data_converter=data_converter())
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[BareSendWorkflow],
        activities=[bare_deliver],
        # The scale benchmark gives it mailgate's worker cache (MAILGATE_WORKFLOW_CACHE).
        max_cached_workflows=cached_workflows,
    ):
        await asyncio.Event().wait()


if __name__ == "__main__":
    # Temporal's default cache (1,000) unless told.
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1000))
