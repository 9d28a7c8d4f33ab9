"""A configured mailbox whose secret is not in the CLI's environment: commands that touch its mail
refuse with one clear line and a non-zero status, not a traceback."""

from __future__ import annotations

import asyncio
import os
import sys

from server.app import Mailgate
from tests.support.app import ADMIN_TOKEN, AGENT_TOKEN

CONFIG = """
[[mailboxes]]
address = "agent@example.com"
provider = "smtp_imap"
smtp_url = "smtp+starttls://agent%40example.com@smtp.example.com:587"
imap_url = "imaps://agent%40example.com@imap.example.com"
password_env = "MAILGATE_TEST_UNSET_PASSWORD"
"""


async def test_inbound_list_names_the_missing_secret_in_one_line(app: Mailgate) -> None:
    config = app.settings.data_dir / "mailgate.toml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "MAILGATE_CONFIG": str(config),
        "MAILGATE_DATA_DIR": str(app.settings.data_dir),
        "MAILGATE_TEMPORAL_ADDRESS": app.settings.temporal_address or "",
        "MAILGATE_TASK_QUEUE": app.settings.task_queue,
        "MAILGATE_AGENT_TOKEN": AGENT_TOKEN,
        "MAILGATE_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    env.pop("MAILGATE_TEST_UNSET_PASSWORD", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "inbound",
        "list",
        "--mailbox",
        "agent@example.com",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 1, (out, err)
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, err.decode()
    assert lines[0].startswith("mailgate: mailbox agent@example.com: password_env:")
    assert "MAILGATE_TEST_UNSET_PASSWORD is not set" in lines[0]
    assert "Traceback" not in err.decode()
