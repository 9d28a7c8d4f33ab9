"""`mailgate serve` end to end: send through MCP, kill everything, restart, approve, one delivery each."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from server.embedded import pid_alive
from tests.support.serve import Serve
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e


def deliveries(stack: Serve) -> list[dict[str, object]]:
    result = stack.cli("sandbox", "list", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


async def test_pending_sends_survive_sigkill_of_every_process_and_deliver_once(serve: Serve) -> None:
    serve.start()
    async with serve.mcp() as client:
        sent = []
        for i in range(3):
            result = await client.call_tool(
                "durable_send",
                {
                    "mailbox": "agent@mailgate.local",
                    "to": [f"person{i}@example.com"],
                    "subject": f"Note {i}",
                    "body": "Hello",
                    "idempotency_key": f"note-{i}",
                },
            )
            assert result.structured_content is not None, result.content
            assert result.structured_content["status"] == "pending_approval"
            sent.append(result.structured_content)

    serve.kill_everything()
    assert deliveries(serve) == []
    serve.start()

    # The agent retries a send it is unsure about: the same send comes back, not a new one.
    async with serve.mcp() as client:
        retried = await client.call_tool(
            "durable_send",
            {
                "mailbox": "agent@mailgate.local",
                "to": ["person0@example.com"],
                "subject": "Note 0",
                "body": "Hello",
                "idempotency_key": "note-0",
            },
        )
        assert retried.structured_content is not None
        assert retried.structured_content["send_id"] == sent[0]["send_id"]
        assert retried.structured_content["deduplicated"] is True

    for item in sent[:2]:
        approved = serve.cli("approvals", "approve", str(item["send_id"]), "--as", "alice")
        assert approved.returncode == 0, approved.stderr
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{serve.url}/api/approvals/{sent[2]['send_id']}/approve",
            json={"approver": "bob"},
            headers={"Authorization": f"Bearer {serve.token('admin')}"},
        )
    assert response.status_code == 200, response.text

    await eventually(lambda: len(serve.deliveries()) >= 3)
    await asyncio.sleep(1.0)  # a duplicate, if there were one, would show up now
    rows = deliveries(serve)
    assert sorted(str(r["message_id"]) for r in rows) == sorted(str(s["message_id"]) for s in sent)
    assert serve.stop() == 0


async def test_a_second_start_reuses_a_left_behind_dev_server_and_ctrl_c_stops_children(serve: Serve) -> None:
    serve.start()
    first = serve.temporal_pid()
    assert serve.stop() == 0
    await eventually(lambda: not pid_alive(first), timeout=20)

    serve.start()
    left_behind = serve.temporal_pid()
    assert serve.process is not None
    os.killpg(serve.process.pid, signal.SIGKILL)  # serve dies; its dev server runs on
    serve.process.wait()
    assert pid_alive(left_behind)

    serve.start()
    assert serve.temporal_pid() == left_behind
    listed = serve.cli("mailbox", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "agent@mailgate.local" in listed.stdout
    assert serve.stop() == 0
    await eventually(lambda: not pid_alive(left_behind), timeout=20)


async def test_an_external_temporal_cluster_embeds_nothing(serve: Serve, temporal_env: WorkflowEnvironment) -> None:
    serve.extra_env = {
        "MAILGATE_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "MAILGATE_TASK_QUEUE": f"tq-{uuid.uuid4().hex}",
        "MAILGATE_DEFAULT_MAILBOX": f"ext-{uuid.uuid4().hex[:8]}@mailgate.local",
    }
    serve.start()
    assert not (serve.data_dir / "temporal.json").exists()
    setup = serve.cli("setup")
    assert setup.returncode == 0, setup.stderr
    assert "already registered" in setup.stdout
    # A command given only the data dir finds the stack's cluster, namespace and task queue.
    bare_env = {k: v for k, v in serve.env().items() if k not in serve.extra_env}
    found = subprocess.run(
        [sys.executable, "-m", "server.cli", "mailbox", "list", "--json"],
        env=bare_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    assert serve.extra_env["MAILGATE_DEFAULT_MAILBOX"] in found.stdout
    second = serve.cli("serve", "--port", str(serve.port))
    assert second.returncode != 0
    assert "already runs for data dir" in second.stderr
    assert serve.stop() == 0
