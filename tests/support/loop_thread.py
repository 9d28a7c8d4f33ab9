"""A stack on an event loop of its own, in a background thread, for Hypothesis-driven tests.

Hypothesis drives plain functions; the Temporal client and worker live on this loop and the
test hands it coroutines.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from server.app import Mailgate
from server.connect import connect
from server.credentials import load_secrets
from server.settings import Settings
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Stack:
    """The app and a worker, living on the background loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: Mailgate
        self._stop = asyncio.Event()
        self._done: asyncio.Future[None]

    async def start(self) -> None:
        client = await connect(self.settings)
        self.app = Mailgate.build(self.settings, client, load_secrets(self.settings))
        ready = asyncio.Event()

        async def serve() -> None:
            async with build_worker(
                client, self.settings.task_queue, self.app.providers, proof_key=proof_key(self.app.secrets.secret_key)
            ):
                ready.set()
                await self._stop.wait()

        self._done = asyncio.ensure_future(serve())
        await ready.wait()
        await self.app.mailboxes.create(self.settings.default_mailbox, created_by="tests")

    async def stop(self) -> None:
        self._stop.set()
        await self._done
