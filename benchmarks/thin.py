"""The thin baseline: the floor for any MCP server on Temporal.

The same MCP SDK, the same transports and the same process layout as `mailgate serve` and
`mailgate mcp`, with one tool that only starts the bare one-signal workflow. What mailgate
costs above this is mailgate's own; what this costs above a bare `start_workflow` is the
price of MCP itself.

    python -m benchmarks.thin http  ADDRESS TASK_QUEUE PORT [--worker]   # like `mailgate serve`
    python -m benchmarks.thin stdio ADDRESS TASK_QUEUE                   # like `mailgate mcp` attached
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator

import uvicorn
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.worker import Worker

from benchmarks.bare import BareSendWorkflow, bare_deliver
from workflows.temporal import data_converter


class ThinResult(BaseModel):
    send_id: str
    status: str


def build(client: Client, task_queue: str) -> MCPServer:
    mcp = MCPServer("thin")

    @mcp.tool()
    async def durable_send(
        to: list[str], subject: str, body: str, mailbox: str | None = None, idempotency_key: str | None = None
    ) -> ThinResult:
        """Start the bare one-signal workflow; nothing else."""
        send_id = f"thin-{idempotency_key or uuid.uuid4().hex}"
        payload = {"id": send_id, "to": to, "subject": subject, "body": body, "mailbox": mailbox}
        await client.start_workflow(BareSendWorkflow.run, payload, id=send_id, task_queue=task_queue)
        return ThinResult(send_id=send_id, status="pending_approval")

    return mcp


@contextlib.asynccontextmanager
async def maybe_worker(client: Client, task_queue: str, run: bool) -> AsyncIterator[None]:
    if not run:
        yield
        return
    async with Worker(client, task_queue=task_queue, workflows=[BareSendWorkflow], activities=[bare_deliver]):
        yield


async def main(args: argparse.Namespace) -> None:
    client = await Client.connect(args.address, data_converter=data_converter())
    mcp = build(client, args.task_queue)
    async with maybe_worker(client, args.task_queue, args.worker):
        if args.transport == "stdio":
            await mcp.run_stdio_async()
            return
        app = mcp.streamable_http_app(streamable_http_path="/mcp")
        # The same HTTP parser as `mailgate serve` (server/stack.py), so the baseline stays like for like.
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning", http="httptools")
        )
        await server.serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=["http", "stdio"])
    parser.add_argument("address")
    parser.add_argument("task_queue")
    parser.add_argument("port", type=int, nargs="?", default=0)
    parser.add_argument("--worker", action="store_true", help="run the bare worker in this process")
    asyncio.run(main(parser.parse_args()))
    sys.stdout.flush()
    os._exit(0)  # temporalio's threads can crash interpreter finalization
