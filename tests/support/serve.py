"""`mailgate serve` as a real subprocess on free ports, for whole-stack tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from server.embedded import pid_alive
from tests.support.ports import free_port
from workflows.providers.sandbox.reads import Delivery
from workflows.providers.sandbox.store import SandboxStore

PORT_ATTEMPTS = 3
# How serve says a port is taken (server/stack.py port_taken, server/embedded.py, the UI proxy).
TAKEN = re.compile(r"port (\d+) on \S+ is taken by another program|cannot listen on 127\.0\.0\.1:(\d+)")


def written_since(path: Path, offset: int) -> str:
    return path.read_bytes()[offset:].decode(errors="replace") if path.exists() else ""


@dataclass
class Serve:
    data_dir: Path
    port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    temporal_port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    open_files: int | None = None  # RLIMIT_NOFILE for serve and its children (a low one, for floods)
    extra_args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")},
            "MAILGATE_DATA_DIR": str(self.data_dir),
            "MAILGATE_TEMPORAL_UI_PORT": str(self.ui_port),
            **self.extra_env,
        }

    def start(self, timeout: float = 90.0) -> None:
        """Start serve and wait until it is healthy. When serve ends at once because one of the
        ports picked here was taken meanwhile (by anything on the machine: the time between
        picking and binding cannot be closed from outside), start again on fresh ports."""
        for attempt in range(PORT_ATTEMPTS):
            if self._start_once(timeout):
                return
            if attempt + 1 == PORT_ATTEMPTS:
                raise AssertionError(f"serve exited with {self.returncode()}: {self.log()}")
            self.port, self.temporal_port, self.ui_port = free_port(), free_port(), free_port()
            if self.smtp_port:  # 0: the listener is off
                self.smtp_port = free_port()

    def _start_once(self, timeout: float) -> bool:
        """True once serve is healthy; False when it ended because a port was taken meanwhile."""
        logs = [self.data_dir / "serve.log", self.data_dir / "temporal.log"]
        offsets = [path.stat().st_size if path.exists() else 0 for path in logs]
        log = logs[0].open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(self.port),
                "--smtp-port",
                str(self.smtp_port),
                "--temporal-port",
                str(self.temporal_port),
                *self.extra_args,
            ],
            env=self.env(),
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=self._limit_open_files if self.open_files else None,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said, dev = (written_since(path, offset) for path, offset in zip(logs, offsets, strict=True))
                if self._port_was_taken(said, dev):
                    return False
                raise AssertionError(f"serve exited with {self.process.returncode}: {self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return True
            time.sleep(0.2)
        raise AssertionError(f"serve did not become healthy: {self.log()}")

    def _port_was_taken(self, said: str, dev: str) -> bool:
        """serve named one of our ports as taken, or its dev server could not bind one (ours, or
        the HTTP API port it picks for itself)."""
        named = TAKEN.search(said)
        if named is not None:
            return int(named.group(1) or named.group(2)) in (
                self.port,
                self.smtp_port,
                self.temporal_port,
                self.ui_port,
            )
        return "the Temporal dev server exited" in said and "address already in use" in dev

    def returncode(self) -> int | None:
        return self.process.returncode if self.process is not None else None

    def _limit_open_files(self) -> None:
        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    def log(self) -> str:
        return (self.data_dir / "serve.log").read_text(errors="replace")[-4000:]

    def temporal_pid(self) -> int:
        return int(json.loads((self.data_dir / "temporal.json").read_text())["pid"])

    def kill_everything(self) -> None:
        """SIGKILL the serve process group and the dev server: a machine-wide crash, short of the OS."""
        assert self.process is not None
        temporal = self.temporal_pid()
        os.killpg(self.process.pid, signal.SIGKILL)
        os.kill(temporal, signal.SIGKILL)
        self.process.wait()
        while pid_alive(temporal):
            time.sleep(0.05)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def deliveries(self, mailbox: str | None = None) -> list[Delivery]:
        """What the sandbox delivered, as `mailgate sandbox list` shows it, read from its store
        (polling the CLI costs a Python start per look)."""
        store = SandboxStore(self.data_dir / "sandbox.db")
        try:
            return store.deliveries(mailbox)
        finally:
            store.close()

    def stop_everything(self) -> None:
        """After a test: SIGKILL what still runs (serve's process group and its dev server, which a
        killed serve leaves behind). Tests that check a graceful stop call `stop` themselves; here
        it would only cost a second or more per test."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(OSError, ValueError, KeyError):
            os.kill(self.temporal_pid(), signal.SIGKILL)

    def token(self, role: str) -> str:
        return (self.data_dir / f"{role}.token").read_text().strip()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def made(self, *args: str) -> dict[str, object]:
        """What a CLI command that makes something (`agents add`, `people add`) printed with --json."""
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        value: dict[str, object] = json.loads(done.stdout)
        return value

    @contextlib.asynccontextmanager
    async def mcp(self) -> AsyncIterator[Client]:
        headers = {"Authorization": f"Bearer {self.token('agent')}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(f"{self.url}/mcp", http_client=http)) as client,
        ):
            yield client

    async def submit_and_approve(self, keys: list[str], to: str = "b@example.com", at_once: int = 1) -> None:
        """What an agent and a human do: submit (retrying with the same key), then approve; for
        ``at_once`` keys at a time (one: in order, as the crash tests' random kill points expect)."""
        admin = {"Authorization": f"Bearer {self.token('admin')}"}
        slots = asyncio.Semaphore(at_once)
        async with self.mcp() as client, httpx.AsyncClient(base_url=self.url, headers=admin, timeout=30) as http:

            async def one(key: str) -> None:
                async with slots:
                    sent = await client.call_tool(
                        "durable_send",
                        {
                            "mailbox": "agent@mailgate.local",
                            "to": [to],
                            "subject": key,
                            "body": "b",
                            "idempotency_key": key,
                        },
                    )
                    data = sent.structured_content or {}
                    if data.get("status") == "pending_approval":
                        await http.post(f"/api/approvals/{data['send_id']}/approve", json={"approver": "alice"})

            if at_once == 1:
                for key in keys:
                    await one(key)
                return
            async with asyncio.TaskGroup() as group:  # a failure cancels the rest
                for key in keys:
                    group.create_task(one(key))
