"""The `mailgate` command line as a real subprocess, pointed at an app under test."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass

from server.app import Mailgate
from tests.support.app import ADMIN_TOKEN, AGENT_TOKEN

MAILGATE = [sys.executable, "-m", "server.cli"]


@dataclass
class Run:
    code: int
    out: str
    err: str


async def mailgate(app: Mailgate, *args: str, env: dict[str, str] | None = None) -> Run:
    """Run ``mailgate ARGS`` against the app's data dir, Temporal and task queue (``env`` adds to that)."""
    settings = app.settings
    environment = {
        **os.environ,
        "MAILGATE_DATA_DIR": str(settings.data_dir),
        "MAILGATE_TEMPORAL_ADDRESS": settings.temporal_address or "",
        "MAILGATE_TASK_QUEUE": settings.task_queue,
        "MAILGATE_AGENT_TOKEN": AGENT_TOKEN,
        "MAILGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        **(env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        *MAILGATE, *args, env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())
