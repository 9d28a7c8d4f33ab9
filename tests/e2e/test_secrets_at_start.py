"""Secrets are real and the data dir is private, checked against a real `mailgate serve`
(issue 13 items 6 and 7, issue 25 item 10)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support.serve import Serve

pytestmark = pytest.mark.e2e

REFUSED = [
    ("MAILGATE_MULTIMAIL_WEBHOOK_SECRET", ""),  # empty: today it turns the endpoint on with an empty HMAC key
    ("MAILGATE_MULTIMAIL_WEBHOOK_SECRET", "short"),
    ("MAILGATE_AGENT_TOKEN", ""),
    ("MAILGATE_AGENT_TOKEN", "sixteen-chars-xx"),
    ("MAILGATE_ADMIN_TOKEN", "a" * 31),
    ("MAILGATE_SECRET_KEY", "   "),
    ("MAILGATE_TEMPORAL_API_KEY", ""),
]


@pytest.mark.parametrize(("variable", "value"), REFUSED)
def test_empty_or_short_secrets_are_refused_at_start_naming_the_variable(
    serve: Serve, variable: str, value: str
) -> None:
    serve.extra_env = {variable: value}
    done = serve.cli(
        "serve", "--port", str(serve.port), "--smtp-port", "0", "--temporal-port", str(serve.temporal_port)
    )
    assert done.returncode != 0, done.stderr
    assert variable in done.stderr and "at least" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert value.strip() == "" or value not in done.stderr.replace(variable, "")  # never echo the secret
    assert not (serve.data_dir / "temporal.json").exists()  # nothing started


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        if not path.is_symlink():
            found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


async def test_the_data_dir_is_0700_and_every_file_in_it_0600(serve: Serve) -> None:
    # A data dir from before: world-readable, with a world-readable file in it.
    os.chmod(serve.data_dir, 0o755)  # noqa: S103 (the old, too open mode under test)
    old = serve.data_dir / "sandbox.db"
    old.touch(mode=0o644)
    os.chmod(old, 0o644)
    (serve.data_dir / "imap").mkdir(mode=0o755)
    (serve.data_dir / "imap" / "box.db").touch(mode=0o644)
    old_umask = os.umask(0o022)  # what a user's shell has; mailgate must not rely on it
    try:
        serve.start()
    finally:
        os.umask(old_umask)
    # Files SQLite and the Temporal dev server create later (WAL, SHM) too.
    async with serve.mcp() as client:
        sent = await client.call_tool(
            "durable_send", {"mailbox": "agent@mailgate.local", "to": ["b@example.com"], "subject": "s", "body": "b"}
        )
        assert not sent.is_error, sent.content
    found = modes(serve.data_dir)
    assert {"temporal.db", "temporal.db-wal", "sandbox.db", "agent.token", "stack.json"} <= set(found), found
    loose = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o700 if (serve.data_dir / name).is_dir() else 0o600)
    }
    assert loose == {}, loose
    assert serve.stop() == 0
