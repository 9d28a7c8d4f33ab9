"""serve's worker process is started again when it dies, but not for ever: a child that keeps
dying soon after its start ends serve with the reason (server/worker_process.py). The restart of
a real `mailgate worker` under a real serve is in tests/e2e/test_worker_process.py."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from server.settings import Settings, SettingsError
from server.worker_process import GIVE_UP_AFTER, WorkerProcess

DIES_AT_ONCE = ("-c", "import sys; sys.exit(3)")


async def test_a_worker_that_keeps_dying_at_start_ends_the_watch_with_the_reason(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, task_queue="restarts-give-up")
    process = WorkerProcess(settings, temporal_env.client, "", asyncio.Event(), command=DIES_AT_ONCE, first_pause=0.01)
    process.child = await asyncio.create_subprocess_exec(sys.executable, *DIES_AT_ONCE)
    with pytest.raises(SettingsError) as refused:
        await asyncio.wait_for(process.watch(), 60)
    assert f"died {GIVE_UP_AFTER} times in a row" in str(refused.value)
    assert "last exit status 3" in str(refused.value)
    assert process.restarts == GIVE_UP_AFTER - 1
    assert not await process.ready()


async def test_no_restart_once_serve_is_stopping(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    stopping = asyncio.Event()
    settings = Settings(data_dir=tmp_path, task_queue="restarts-stopping")
    process = WorkerProcess(settings, temporal_env.client, "", stopping, command=DIES_AT_ONCE, first_pause=0.01)
    process.child = await asyncio.create_subprocess_exec(sys.executable, *DIES_AT_ONCE)
    stopping.set()  # a Ctrl-C reaches serve and its child alike
    await asyncio.wait_for(process.watch(), 10)
    assert process.restarts == 0
