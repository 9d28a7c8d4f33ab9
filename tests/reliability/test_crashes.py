"""Nothing lost, nothing sent twice: SIGKILL of workers, of the whole stack, of Temporal itself.

Each test prints what it did (kills, restarts, sends) so the figures in docs/reliability.md can be checked
against a run: pytest -s tests/reliability/test_crashes.py
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.credentials import load_secrets
from server.errors import Unavailable
from tests.support.app import make_settings, process_env
from tests.support.serve import Serve
from tests.support.wait import eventually
from workflows.models import Decision
from workflows.providers.sandbox.store import SandboxStore

pytestmark = pytest.mark.e2e
SENDS = 100


@dataclass
class Workers:
    """`mailgate worker` subprocesses against the session's Temporal server."""

    env: dict[str, str]
    log: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: int = 0

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "worker"], env=self.env, stdout=log, stderr=log
            )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.processes.remove(process)
        self.kills += 1

    def stop_all(self) -> None:
        for process in list(self.processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


@pytest.fixture
async def front(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[tuple[Mailgate, Workers]]:
    """The front door in this process (no worker), workers as separate processes."""
    settings = make_settings(temporal_env, tmp_path)
    workers = Workers(process_env(settings), tmp_path / "workers.log")
    app = Mailgate.build(settings, temporal_env.client, load_secrets(settings))
    yield app, workers
    workers.stop_all()


def copies(store: SandboxStore, mailbox: str) -> Counter[str]:
    return Counter(d.message_id for d in store.deliveries(mailbox))


async def all_final(app: Mailgate, send_ids: list[str], timeout: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    pending = set(send_ids)
    final: dict[str, str] = {}
    while pending:
        for send_id in list(pending):
            try:
                state = await app.sends.status(send_id)
            except Unavailable:  # no worker answered the query in time (one was just killed): ask again
                continue
            if state.status in ("sent", "failed", "blocked", "rejected", "expired", "cancelled"):
                final[send_id] = state.status
                pending.discard(send_id)
        if pending and time.monotonic() > deadline:
            raise AssertionError(f"{len(pending)} sends never finished")
        await asyncio.sleep(0.3)
    return final


async def test_sigkill_of_the_worker_at_random_points_loses_and_repeats_nothing(
    front: tuple[Mailgate, Workers],
) -> None:
    app, workers = front
    rng = random.Random(20261130)
    worker = workers.start()
    mailbox = app.settings.default_mailbox
    await app.mailboxes.create(mailbox, created_by="tests")
    sends = [
        (await app.sends.submit(mailbox=mailbox, to=[f"r{i}@example.com"], subject=f"n{i}", body="b")).send_id
        for i in range(SENDS)
    ]
    for batch in range(10):
        # Decisions as signals: they are stored even while no worker runs.
        for send_id in sends[batch * 10 : (batch + 1) * 10]:
            decision = Decision(decision="approve", approver="alice", decision_id=f"d-{send_id}")
            await app.sends.signal_decision(send_id, decision)
        await asyncio.sleep(rng.uniform(0.05, 0.8))
        workers.kill(worker)
        worker = workers.start()
    final = await all_final(app, sends)
    delivered = copies(app.sandbox, mailbox)
    print(f"\nworker SIGKILLs: {workers.kills}; sends: {len(sends)}; sent: {sum(v == 'sent' for v in final.values())}")
    assert set(final.values()) == {"sent"}
    assert len(delivered) == SENDS
    assert set(delivered.values()) == {1}


async def test_one_of_two_workers_killed_mid_load_loses_nothing(front: tuple[Mailgate, Workers]) -> None:
    app, workers = front
    first, _second = workers.start(), workers.start()
    mailbox = app.settings.default_mailbox
    await app.mailboxes.create(mailbox, created_by="tests", mode="autonomous")
    await asyncio.sleep(1.0)
    sends = []
    for i in range(SENDS):
        sends.append((await app.sends.submit(mailbox=mailbox, to=["b@example.com"], subject=f"{i}", body="b")).send_id)
        if i == SENDS // 3:
            workers.kill(first)
    final = await all_final(app, sends)
    delivered = copies(app.sandbox, mailbox)
    print(f"\ntwo workers, one SIGKILLed after {SENDS // 3} of {SENDS} sends: {len(delivered)} delivered once")
    assert set(final.values()) == {"sent"}
    assert len(delivered) == SENDS
    assert set(delivered.values()) == {1}


def sandbox_rows(stack: Serve) -> Counter[str]:
    store = SandboxStore(stack.data_dir / "sandbox.db")
    try:
        return copies(store, "agent@mailgate.local")
    finally:
        store.close()


async def test_sigkill_of_the_whole_stack_at_random_points_loses_and_repeats_nothing(serve: Serve) -> None:
    rng = random.Random(7)
    keys = [f"note-{i}" for i in range(SENDS)]
    crashes = 0
    for round_ in range(5):
        serve.start()
        task = asyncio.create_task(serve.submit_and_approve(keys[round_ * 20 : (round_ + 1) * 20]))
        await asyncio.sleep(rng.uniform(0.3, 2.5))
        serve.kill_everything()
        crashes += 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    serve.start()
    # The agent retries every call it is not sure about; the human approves what waits (eight
    # calls at a time: nothing is killed now, and the order of the retries proves nothing).
    await serve.submit_and_approve(keys, at_once=8)
    await eventually(lambda: len(sandbox_rows(serve)) >= SENDS, timeout=90)
    await asyncio.sleep(1.0)
    delivered = sandbox_rows(serve)
    print(f"\nwhole-stack SIGKILLs (serve, worker, Temporal): {crashes}; delivered: {len(delivered)}")
    assert len(delivered) == SENDS
    assert set(delivered.values()) == {1}
    assert serve.stop() == 0


async def restarted(stack: Serve, old_pid: int, timeout: float = 60) -> None:
    """Wait until the stack's supervisor has a new dev server up and /healthz answers 200."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=3) as http:
        while time.monotonic() < deadline:
            if stack.temporal_pid() != old_pid:
                try:
                    if (await http.get(f"{stack.url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"the dev server did not come back: {stack.log()}")


async def test_ten_restarts_of_the_embedded_temporal_server_while_sends_wait(serve: Serve) -> None:
    serve.start()
    headers = {"Authorization": f"Bearer {serve.token('admin')}"}
    slots = asyncio.Semaphore(8)  # submitted and approved eight at a time: the order proves nothing here
    async with serve.mcp() as client:

        async def submit(i: int) -> str:
            async with slots:
                result = await client.call_tool(
                    "durable_send",
                    {"mailbox": "agent@mailgate.local", "to": ["b@example.com"], "subject": f"wait {i}", "body": "b"},
                )
            return str((result.structured_content or {})["send_id"])

        sends = list(await asyncio.gather(*(submit(i) for i in range(SENDS))))
    pids = []
    for _ in range(10):
        pid = serve.temporal_pid()
        pids.append(pid)
        os.kill(pid, signal.SIGKILL)
        await restarted(serve, pid)
    async with httpx.AsyncClient(base_url=serve.url, headers=headers, timeout=30) as http:
        # Visibility is eventually consistent: a restarted server may still be replaying its index.
        listed: set[str] = set()
        for _ in range(150):
            pending = (await http.get("/api/approvals", params={"limit": 500})).json()["approvals"]
            listed = {p["send_id"] for p in pending}
            if listed == set(sends):
                break
            await asyncio.sleep(0.2)
        assert listed == set(sends)

        async def approve(send_id: str) -> None:
            async with slots:
                approved = await http.post(f"/api/approvals/{send_id}/approve", json={"approver": "alice"})
            assert approved.status_code == 200, approved.text

        await asyncio.gather(*(approve(send_id) for send_id in sends))
    await eventually(lambda: len(sandbox_rows(serve)) >= SENDS, timeout=90)
    await asyncio.sleep(1.0)
    delivered = sandbox_rows(serve)
    print(f"\nTemporal dev server SIGKILLed and restarted {len(set(pids))} times; {len(delivered)} delivered once")
    assert len(set(pids)) == 10
    assert len(delivered) == SENDS
    assert set(delivered.values()) == {1}
