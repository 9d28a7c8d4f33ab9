"""Property: no sequence of agent tool calls loosens a mailbox or gets a gated email out.

Hypothesis drives plain functions, so the stack runs on an event loop of its own in a
background thread, with its own Temporal client and worker against the session's server.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.connect import connect
from server.credentials import load_secrets
from server.mcp_server import build_mcp
from tests.conftest import make_settings
from workflows.models import MODES, strictness
from workflows.providers.base import ProviderSet
from workflows.providers.sandbox import SandboxProvider
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

    def __init__(self, address: str, data_dir: Path, env: WorkflowEnvironment) -> None:
        self.address = address
        self.data_dir = data_dir
        self.env = env
        self.app: Mailgate
        self._stop = asyncio.Event()
        self._done: asyncio.Future[None]

    async def start(self) -> None:
        settings = make_settings(self.env, self.data_dir, temporal_address=self.address)
        client = await connect(settings)
        self.app = Mailgate.build(settings, client, load_secrets(settings))
        ready = asyncio.Event()

        async def serve() -> None:
            providers = ProviderSet(SandboxProvider(self.app.sandbox))
            async with build_worker(client, settings.task_queue, providers):
                ready.set()
                await self._stop.wait()

        self._done = asyncio.ensure_future(serve())
        await ready.wait()

    async def stop(self) -> None:
        self._stop.set()
        await self._done


@pytest.fixture
def stack(temporal_env: WorkflowEnvironment, tmp_path: Path) -> Iterator[tuple[LoopThread, Stack]]:
    runner = LoopThread()
    stack = Stack(temporal_env.client.service_client.config.target_host, tmp_path, temporal_env)
    runner.run(stack.start())
    yield runner, stack
    runner.run(stack.stop())
    runner.stop()


modes = st.sampled_from(MODES)
calls = st.one_of(
    st.tuples(st.just("set_oversight_mode"), modes),
    st.tuples(st.just("request_upgrade"), modes),
    st.tuples(st.just("apply_upgrade"), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=1, max_size=10)),
    st.tuples(st.just("apply_upgrade_from_other_mailbox"), st.none()),
    st.tuples(st.just("create_mailbox"), modes),
    st.tuples(st.just("durable_send"), st.sampled_from(["b@example.com", "boss@example.org", "x@evil.com"])),
    st.tuples(st.just("cancel_send"), st.none()),
)


async def play(app: Mailgate, sequence: list[tuple[str, Any]]) -> dict[str, str]:
    """Run the agent's calls; return each mailbox it could touch with its starting mode."""
    own = f"p-{uuid.uuid4().hex[:10]}@mailgate.local"
    other = f"o-{uuid.uuid4().hex[:10]}@mailgate.local"
    await app.mailboxes.create(own, created_by="tests")
    await app.mailboxes.create(other, created_by="tests")
    # A code legitimately given for another mailbox must not work here.
    other_code = (await app.mailboxes.request_upgrade(other, "autonomous", "x", requested_by="agent")).code
    start = {own: "gated_send"}
    sends: list[str] = []
    async with Client(build_mcp(app)) as client:
        for name, value in sequence:
            if name == "set_oversight_mode":
                await client.call_tool(name, {"mailbox": own, "mode": value})
            elif name == "request_upgrade":
                await client.call_tool(name, {"mailbox": own, "mode": value, "reason": "please"})
            elif name == "apply_upgrade":
                await client.call_tool(name, {"mailbox": own, "code": value})
            elif name == "apply_upgrade_from_other_mailbox":
                await client.call_tool("apply_upgrade", {"mailbox": own, "code": other_code})
            elif name == "create_mailbox":
                address = f"c-{uuid.uuid4().hex[:10]}@mailgate.local"
                created = await client.call_tool(name, {"address": address, "oversight_mode": value})
                if not created.is_error:
                    start[address] = str((created.structured_content or {})["mode"])
            elif name == "durable_send":
                for mailbox in start:
                    sent = await client.call_tool(
                        name, {"mailbox": mailbox, "to": [value], "subject": "s", "body": str(len(sends))}
                    )
                    if not sent.is_error:
                        sends.append(str((sent.structured_content or {})["send_id"]))
            elif name == "cancel_send" and sends:
                await client.call_tool(name, {"send_id": sends[0]})
    for send_id in sends:
        assert (await app.sends.status(send_id)).status in ("pending_approval", "cancelled", "blocked")
    return start


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(calls, min_size=1, max_size=8))
def test_agent_calls_never_loosen_a_mailbox_nor_send_without_approval(
    stack: tuple[LoopThread, Stack], sequence: list[tuple[str, Any]]
) -> None:
    runner, s = stack
    start = runner.run(play(s.app, sequence))
    for mailbox, mode in start.items():
        now = runner.run(s.app.mailboxes.state(mailbox)).config.mode
        assert strictness(now) <= strictness(mode), (mailbox, mode, now)  # type: ignore[arg-type]
        assert s.app.sandbox.deliveries(mailbox) == []
    assert strictness(s.app.settings.new_mailbox_mode) <= strictness("gated_send")
