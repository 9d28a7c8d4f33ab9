"""A rolling upgrade with real processes: the previous release's worker, run from its git commit,
serves the current front door; then the current worker takes over a send the old worker started
while the previous release's CLI (a front door of its own) decides it.

The previous release's code comes from `git archive` of PREVIOUS_RELEASE into a temp dir and
runs with this environment's packages (PYTHONPATH puts it before the editable install): within
one minor version the dependencies are the same; a release that changes them needs its own venv
here. Bump PREVIOUS_RELEASE to the last release's commit (or tag) when one is made."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.credentials import load_secrets
from server.notifications import notify_config
from tests.support.app import make_settings, process_env
from tests.support.wait import provisioned, wait_for_status
from workflows.models import Decision
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker

pytestmark = pytest.mark.e2e
# main when issue 19's operations part began: the first commit whose payload models tolerate
# unknown fields (what a rolling upgrade needs from the older side).
PREVIOUS_RELEASE = "a59413cbf8dfad0a173fc96f2999f9c49ec3965e"
ROOT = Path(__file__).resolve().parents[2]


def previous_release(into: Path) -> Path:
    known = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"], capture_output=True
    )
    if known.returncode != 0:
        # Not a missing peer but a missing history (an export or a shallow clone): nothing to run it from.
        pytest.skip(f"commit {PREVIOUS_RELEASE} is not in {ROOT} (a shallow clone? git fetch --unshallow)")
    archive = into / "previous.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "-o", str(archive), PREVIOUS_RELEASE, "server", "workflows"], check=True
    )
    code = into / "previous"
    with tarfile.open(archive) as tar:
        tar.extractall(code, filter="data")
    return code


async def test_previous_release_worker_and_cli_with_the_current_front_door_and_worker(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    old = previous_release(tmp_path)
    settings = make_settings(temporal_env, tmp_path / "data")
    secrets = load_secrets(settings)  # the secret key both versions sign and check proofs with
    env = process_env(settings, PYTHONPATH=str(old), MAILGATE_DEFAULT_MAILBOX=settings.default_mailbox)
    where = subprocess.run(
        [sys.executable, "-c", "import server, workflows; print(server.__file__, workflows.__file__)"],
        env=env,
        cwd=old,
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(Path(p).is_relative_to(old) for p in where.stdout.split()), where.stdout

    door = Mailgate.build(settings, temporal_env.client, secrets)  # the current front door, no worker
    log = (tmp_path / "old-worker.log").open("ab")

    def start_old_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", "worker"], env=env, cwd=old, stdout=log, stderr=log
        )

    worker = start_old_worker()
    try:
        await door.mailboxes.create(settings.default_mailbox, created_by="tests")
        await provisioned(door, settings.default_mailbox, timeout=60)
        first = await door.sends.submit(
            mailbox=settings.default_mailbox, to=["carol@example.org"], subject="1", body="x"
        )
        second = await door.sends.submit(
            mailbox=settings.default_mailbox, to=["dan@example.org"], subject="2", body="y"
        )
        await wait_for_status(door, second.send_id, {"pending_approval"}, timeout=30)
        # A current front door's decision, carried out by the previous release's worker.
        await door.sends.decide(first.send_id, Decision(decision="approve", approver="alice"))
        sent = await wait_for_status(door, first.send_id, {"sent", "failed", "blocked"}, timeout=60)
        assert sent.status == "sent", sent.reason
    finally:
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 45)
        log.close()
    assert code == 0, (tmp_path / "old-worker.log").read_text()[-3000:]

    # The upgrade rolls on: the current worker takes over the send the old one started, and the
    # previous release's CLI decides it.
    async with build_worker(
        temporal_env.client,
        settings.task_queue,
        door.providers,
        notify_config(settings, secrets),
        proof_key=proof_key(secrets.secret_key),
    ):
        approved = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "server.cli", "approvals", "approve", second.send_id, "--as", "bob"],
            env=env,
            cwd=old,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert approved.returncode == 0, approved.stderr
        state = await wait_for_status(door, second.send_id, {"sent", "failed", "blocked"}, timeout=60)
    await door.providers.aclose()
    assert state.status == "sent", state.reason
    assert [e.kind for e in state.events].count("sent") == 1
