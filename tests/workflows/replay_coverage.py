"""How much workflow code the committed histories exercise (a measurement, not a test).

    .venv/bin/pip install coverage && .venv/bin/python -m tests.workflows.replay_coverage

Replays every history in tests/histories with coverage.py on, and counts, per workflow file, the
statements inside functions that ran. Lines that run on import (``def``, constants) are left
out of both counts, since importing alone would cover them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_FILES = [ROOT / "workflows" / f"{name}.py" for name in ("send", "mailbox", "watcher", "reply_wait", "notify")]
WORKFLOW_FILES += sorted((ROOT / "workflows" / "sending").glob("[!_]*.py"))  # the send workflow's steps


def executed(cov: coverage.Coverage) -> dict[Path, set[int]]:
    data = cov.get_data()
    return {path: set(data.lines(str(path)) or ()) for path in WORKFLOW_FILES}


async def replay_all() -> None:
    from temporalio.worker import Replayer

    from tests.support.histories import FILES, load
    from workflows.temporal import data_converter
    from workflows.worker import WORKFLOWS

    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter())
    for path in FILES:
        await replayer.replay_workflow(load(path))


def main() -> int:
    include = [str(p) for p in WORKFLOW_FILES]
    on_import = coverage.Coverage(data_file=None, include=include)
    on_import.start()
    import workflows.worker  # noqa: F401 - runs every workflow module's top level

    on_import.stop()
    imported = executed(on_import)

    replayed = coverage.Coverage(data_file=None, include=include)
    replayed.start()
    asyncio.run(replay_all())
    replayed.stop()
    ran = executed(replayed)

    total_body = total_ran = 0
    for path in WORKFLOW_FILES:
        statements = set(replayed.analysis2(str(path))[1])
        body = statements - imported[path]
        covered = (ran[path] & body) - imported[path]
        total_body += len(body)
        total_ran += len(covered)
        missed = sorted(body - covered)
        print(f"{path.relative_to(ROOT)}: {len(covered)}/{len(body)} statements in functions; missed lines {missed}")
    print(f"workflow code exercised by committed histories: {total_ran}/{total_body} = {total_ran / total_body:.1%}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
