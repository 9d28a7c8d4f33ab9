"""The embedded dev server as `mailgate serve` starts it (server/embedded.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

import server.embedded
from server.embedded import FORCE_SEARCH_ATTRIBUTE_REFRESH, start_dev_server
from server.settings import Settings
from tests.support.ports import free_port
from tests.support.serve import Serve
from tests.support.wait import eventually
from workflows.temporal import MAILBOX, SEARCH_ATTRIBUTES, STATUS


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_text().split("\0")


async def test_search_attributes_are_cached_and_mailgates_work_from_the_first_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, temporal_port=free_port(), temporal_ui_port=free_port(), agent_token=None)
    dev = start_dev_server(settings)
    try:
        # start-dev's default re-reads the namespace and cluster metadata from SQLite for every
        # start, upsert, describe and list (issue 20: about 30 reads per approved send).
        assert f"{FORCE_SEARCH_ATTRIBUTE_REFRESH}=false" in command_line(dev.pid)
        # The attributes are registered as the server starts, so the first send may carry them.
        client = await Client.connect(dev.address)
        attributes = [SearchAttributePair(STATUS, "pending_approval"), SearchAttributePair(MAILBOX, "a@example.com")]
        handle = await client.start_workflow(
            "SendEmailWorkflow",
            id="first-send",
            task_queue="nobody-polls",
            search_attributes=TypedSearchAttributes(attributes),
        )
        assert (await handle.describe()).typed_search_attributes.get(STATUS) == "pending_approval"

        async def listed() -> bool:
            query = f"{STATUS.name} = 'pending_approval' AND {MAILBOX.name} = 'a@example.com'"
            return (await client.count_workflows(query)).count == 1

        await eventually(listed, timeout=15)
    finally:
        dev.stop()


@pytest.mark.e2e
async def test_serve_registers_an_attribute_that_a_data_dir_from_an_older_release_lacks(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A data dir made by a release without MailgateStatus: start-dev registers attributes only
    # when it creates the namespace, so starting it again with all of them would not add it.
    older = {name: kind for name, kind in SEARCH_ATTRIBUTES.items() if name != STATUS.name}
    monkeypatch.setattr(server.embedded, "SEARCH_ATTRIBUTES", older)
    settings = Settings(
        data_dir=serve.data_dir, temporal_port=serve.temporal_port, temporal_ui_port=serve.ui_port, agent_token=None
    )
    start_dev_server(settings).stop()

    serve.start()
    async with serve.mcp() as client:
        sent = await client.call_tool(
            "durable_send",
            {"to": ["person@example.com"], "subject": "After the upgrade", "body": "Hello", "idempotency_key": "up-1"},
        )
    assert sent.structured_content is not None, sent.content
    assert sent.structured_content["status"] == "pending_approval"

    async def listed() -> bool:  # found by its MailgateStatus, which the send upserts
        done = serve.cli("approvals", "list", "--json")
        assert done.returncode == 0, done.stderr
        return sent.structured_content is not None and sent.structured_content["send_id"] in done.stdout

    await eventually(listed, timeout=30)
    assert f"registered search attributes {STATUS.name}" in serve.log()
