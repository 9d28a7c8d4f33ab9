"""Workflow histories for the replay test: where they live and how a test saves one."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from server.app import Mailgate
from workflows.temporal import data_converter
from workflows.worker import WORKFLOWS

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
FILES = sorted([*HISTORIES.rglob("*.json"), *HISTORIES.rglob("*.json.gz")])


def name(path: Path) -> str:
    return str(path.relative_to(HISTORIES)).removesuffix(".gz").removesuffix(".json")


def load(path: Path) -> WorkflowHistory:
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    return WorkflowHistory.from_json(name(path), text)


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


async def replays(client: Client, workflow_id: str, run_id: str) -> None:
    """The run that continued as new replays against today's code (its patches included)."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    await Replayer(workflows=WORKFLOWS, data_converter=data_converter()).replay_workflow(history)
