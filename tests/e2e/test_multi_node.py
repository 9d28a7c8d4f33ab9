"""Many machines, on one: one Temporal dev server, one PostgreSQL, two front doors
(`mailgate serve --no-worker`) and three workers (`mailgate worker`), each process with its own
empty data dir and nothing shared but MAILGATE_TEMPORAL_ADDRESS and MAILGATE_DATABASE_URL.

Agents send through both doors, a human approves each send through the other door; one worker
and one front door are SIGKILLed mid-run. Every send is delivered exactly once, and every email
id resolves from every door, a door started afterwards on an empty data dir included. Last, MCP
clients of both protocol eras go through a round-robin balancer in front of two doors, each
request landing on the other door than the one before."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import httpx2
import psycopg
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import ElicitRequestParams, ElicitRequestURLParams, ElicitResult
from temporalio.testing import WorkflowEnvironment

from tests.support.peers.dovecot import Dovecot
from tests.support.peers.fixtures import IMAP_PASSWORD, IMAP_USER, dovecot, imap_append, smtp_peer
from tests.support.peers.smtp_sink import SmtpPeer
from tests.support.round_robin import RoundRobin
from tests.support.serve import Serve
from workflows.providers.sandbox.store import SandboxStore
from workflows.store import open_database

__all__ = ["dovecot", "smtp_peer"]  # fixtures
FINAL = ("sent", "failed", "blocked", "rejected", "expired", "cancelled")


def shared_token(url: str, role: str) -> str:
    """The generated token every process agreed on (none of them has it in its data dir)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT value FROM mailgate.shared_values WHERE name = %s", (f"{role}.token",)).fetchone()
    assert row is not None
    return str(row[0])


class Door(Serve):
    def token(self, role: str) -> str:
        return shared_token(self.extra_env["MAILGATE_DATABASE_URL"], role)


def front_door(env: dict[str, str]) -> Door:
    return Door(Path(env["MAILGATE_DATA_DIR"]), smtp_port=0, extra_env=env, extra_args=["--no-worker"])


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", "worker"], env=env, stdout=out, stderr=out, start_new_session=True
        )


async def send(door: Door, mailbox: str, key: str) -> str:
    async with door.mcp() as client:
        sent = await client.call_tool(
            "durable_send",
            {"mailbox": mailbox, "to": [mailbox], "subject": key, "body": f"body of {key}", "idempotency_key": key},
        )
    data = sent.structured_content or {}
    assert data.get("status") == "pending_approval", sent.content
    return str(data["send_id"])


def approve(door: Door, send_id: str) -> None:
    admin = {"Authorization": f"Bearer {door.token('admin')}"}
    # After a worker is killed, the decision's workflow task waits for Temporal to hand the send to
    # another worker (the 3 s sticky timeout, or the 10 s task timeout if the dead one had taken it).
    answer = httpx.post(
        f"{door.url}/api/approvals/{send_id}/approve", json={"approver": "alice"}, headers=admin, timeout=30
    )
    assert answer.status_code == 200, answer.text


def status(door: Door, send_id: str) -> str:
    admin = {"Authorization": f"Bearer {door.token('admin')}"}
    answer = httpx.get(f"{door.url}/api/sends/{send_id}", headers=admin, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["status"])


async def inbox_ids(door: Door, mailbox: str) -> dict[str, str]:
    """subject -> email id, as this door lists the inbox."""
    async with door.mcp() as client:
        listed = await client.call_tool("check_inbox", {"mailbox": mailbox, "limit": 50})
    assert listed.structured_content is not None, listed.content
    return {e["subject"]: e["email_id"] for e in listed.structured_content["emails"]}


async def read_subject(door: Door, mailbox: str, email_id: str) -> str:
    async with door.mcp() as client:
        read = await client.call_tool("read_email", {"mailbox": mailbox, "email_id": email_id})
    assert read.structured_content is not None, read.content
    return str(read.structured_content["subject"])


async def through_a_balancer(doors: list[Door], mailbox: str, linked: str) -> None:
    """Clients that know one URL, a balancer that is not sticky: every request goes to the next door.

    A handshake-era client (initialize, then the same session for every call: Claude Desktop's
    kind) sends, lists and reads; a 2026-07-28 client sends on a mailbox that asks the client's
    human to open the dashboard, so its retry carries a requestState another door sealed."""
    balancer = RoundRobin([door.url for door in doors])
    headers = {"Authorization": f"Bearer {doors[0].token('agent')}"}
    async with balancer.running(), httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(f"{balancer.url}/mcp", http_client=http), mode="legacy") as legacy:
            sent = await legacy.call_tool(
                "durable_send", {"mailbox": mailbox, "to": [mailbox], "subject": "balanced", "body": "b"}
            )
            assert (sent.structured_content or {}).get("status") == "pending_approval", sent.content
            listed = await legacy.call_tool("list_sends", {"mailbox": mailbox})
            assert not listed.is_error, listed.content
            inbox = await legacy.call_tool("check_inbox", {"mailbox": mailbox, "limit": 5})
            assert inbox.structured_content is not None, inbox.content
            email = inbox.structured_content["emails"][0]
            read = await legacy.call_tool("read_email", {"mailbox": mailbox, "email_id": email["email_id"]})
            assert (read.structured_content or {}).get("subject") == email["subject"], read.content
        posts = [door for method, door in balancer.served if method == "POST"]
        assert len(posts) >= 5 and set(posts) == set(balancer.backends), balancer.served

        asked: list[ElicitRequestParams] = []

        async def shown(_context: object, params: ElicitRequestParams) -> ElicitResult:
            asked.append(params)
            return ElicitResult(action="accept")

        before = len(balancer.served)
        async with Client(
            streamable_http_client(f"{balancer.url}/mcp", http_client=http),
            mode="2026-07-28",
            elicitation_callback=shown,  # type: ignore[arg-type]
        ) as modern:
            sent = await modern.call_tool(
                "durable_send", {"mailbox": linked, "to": [linked], "subject": "linked", "body": "b"}
            )
        assert (sent.structured_content or {}).get("status") == "pending_approval", sent.content
        [params] = asked
        assert isinstance(params, ElicitRequestURLParams) and params.url.endswith(sent.structured_content["send_id"])
        first, retry = balancer.served[before:][-2:]  # the input_required answer and the retry's
        assert first[1] != retry[1], balancer.served[before:]


def cluster_config(path: Path, address: str, dovecot: Dovecot, smtp: SmtpPeer, linked: str) -> str:
    path.write_text(
        f"""
[[mailboxes]]
address = "{linked}"
client_approval = "link"

[[mailboxes]]
address = "{address}"
provider = "smtp_imap"
smtp_url = "smtp+starttls://{IMAP_USER}@127.0.0.1:{smtp.port}"
imap_url = "imaps://{IMAP_USER}@127.0.0.1:{dovecot.tls_port}"
password_env = "ALICE_PASSWORD"
tls_ca_file = "{dovecot.ca_file}"
"""
    )
    return str(path)


async def test_two_doors_three_workers_share_everything_through_temporal_and_postgresql(
    temporal_env: WorkflowEnvironment,
    postgres_url: str,
    dovecot: Dovecot,
    smtp_peer: SmtpPeer,
    tmp_path: Path,
) -> None:
    mailbox = f"agent-{uuid.uuid4().hex[:8]}@mailgate.local"
    imap_box = f"alice-{uuid.uuid4().hex[:8]}@example.test"
    linked = f"linked-{uuid.uuid4().hex[:8]}@mailgate.local"
    cluster = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")},
        "MAILGATE_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "MAILGATE_DATABASE_URL": postgres_url,
        "MAILGATE_TASK_QUEUE": f"tq-{uuid.uuid4().hex}",
        "MAILGATE_DEFAULT_MAILBOX": mailbox,
        "MAILGATE_CONFIG": cluster_config(tmp_path / "mailgate.toml", imap_box, dovecot, smtp_peer, linked),
        "ALICE_PASSWORD": IMAP_PASSWORD,
    }

    def node(name: str) -> dict[str, str]:
        (tmp_path / name).mkdir(mode=0o700)
        return {**cluster, "MAILGATE_DATA_DIR": str(tmp_path / name)}

    setup = subprocess.run(
        [sys.executable, "-m", "server.cli", "setup"], env=node("setup"), capture_output=True, text=True, timeout=60
    )
    assert setup.returncode == 0, setup.stderr
    workers = [start_worker(node(f"worker{n}"), tmp_path / f"worker{n}.log") for n in range(3)]
    doors = [front_door(node(name)) for name in ("door_a", "door_b")]
    await asyncio.gather(*(asyncio.to_thread(door.start) for door in doors))  # starting takes seconds: together
    a, b = doors
    ready = httpx.get(f"{b.url}/readyz", timeout=30).json()
    assert ready["checks"] == {"temporal": "ok", "database": "ok"}, ready  # no worker here, a database
    late: Door | None = None
    try:
        from_a = [await send(a, mailbox, f"a{n}-{uuid.uuid4().hex[:6]}") for n in range(3)]
        from_b = [await send(b, mailbox, f"b{n}-{uuid.uuid4().hex[:6]}") for n in range(3)]
        # The same key again through the other door: the same send, never a second one.
        again = "dup-" + uuid.uuid4().hex[:6]
        assert await send(b, mailbox, again) == await send(a, mailbox, again)
        for send_id in from_b:
            approve(a, send_id)
        os.killpg(workers[0].pid, signal.SIGKILL)  # a worker and a door die mid-run
        assert a.process is not None
        os.killpg(a.process.pid, signal.SIGKILL)
        a.process.wait()
        for send_id in from_a:
            approve(b, send_id)

        deadline = time.monotonic() + 120
        pending = set(from_a + from_b)
        while pending and time.monotonic() < deadline:
            pending = {s for s in pending if status(b, s) not in FINAL}
            time.sleep(0.5)
        assert not pending, f"never finished: {pending}"
        assert {status(b, s) for s in from_a + from_b} == {"sent"}

        store = SandboxStore(open_database(tmp_path / "check.db", postgres_url, name="sandbox"))
        copies = Counter(d.subject for d in store.deliveries(mailbox) if d.recipient == mailbox)
        store.close()
        sent_subjects = {s for s, n in copies.items() if not s.startswith("dup-")}
        assert len(sent_subjects) == 6 and set(copies.values()) == {1}, copies  # each delivered once
        # Every worker claimed its deliveries in the one shared ledger, which the doors' records are in too.
        with psycopg.connect(postgres_url) as conn:
            claimed = {row[0] for row in conn.execute("SELECT send_id FROM ledger.deliveries").fetchall()}
            recorded = {row[0] for row in conn.execute("SELECT address FROM ledger.mailboxes").fetchall()}
        assert claimed == set(from_a + from_b) and mailbox in recorded

        # A door started now, on an empty data dir, sees the same ids as the one that lived.
        late = front_door(node("door_late"))
        late.start()
        seen_b, seen_late = await inbox_ids(b, mailbox), await inbox_ids(late, mailbox)
        assert seen_b == seen_late and set(seen_b) >= sent_subjects
        for subject, email_id in seen_b.items():
            assert await read_subject(late, mailbox, email_id) == subject
            assert await read_subject(b, mailbox, email_id) == subject

        # Dovecot mail, synced into the shared index by whichever process got there first.
        for n in range(3):
            raw = (
                f"From: Carol <carol@example.org>\r\nTo: {imap_box}\r\nSubject: imap {n}\r\n"
                f"Message-ID: <carol-{n}-{uuid.uuid4().hex}@example.org>\r\n\r\nHello {n}\r\n"
            ).encode()
            await asyncio.to_thread(imap_append, dovecot, "INBOX", raw)
        imap_b, imap_late = await inbox_ids(b, imap_box), await inbox_ids(late, imap_box)
        assert set(imap_b) == {"imap 0", "imap 1", "imap 2"} and imap_b == imap_late
        for subject, email_id in imap_b.items():
            assert await read_subject(late, imap_box, email_id) == subject
            assert await read_subject(b, imap_box, email_id) == subject

        await through_a_balancer([b, late], mailbox, linked)
    finally:
        for door in (*doors, *([late] if late else [])):
            if door.process is not None and door.process.poll() is None:
                door.stop()
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(15)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
