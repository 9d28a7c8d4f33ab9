"""Hostile mail against a real `mailgate serve` while a probe hits /healthz every 100 ms (issue 25, 6-8).

The corpus (tests/support/hostile.py) arrives over the sandbox's SMTP listener and over IMAP (Dovecot),
and is then read back through `read_email` and `get_thread`; an SMTP connection flood under
a 1,024 open-file limit follows. Before parsing was bounded and moved off the event loop, one
of these messages froze every door of the server for 40 s to minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.hostile import BUILDERS, hostile
from tests.support.peers.dovecot import Dovecot
from tests.support.peers.fixtures import IMAP_PASSWORD, IMAP_USER, dovecot, imap_append
from tests.support.serve import Serve

pytestmark = pytest.mark.e2e
__all__ = ["dovecot"]  # fixtures
IMAP_BOX = "alice@example.test"
SANDBOX_BOX = "agent@mailgate.local"
MAX_PROBE_SECONDS = 1.0
SMTP_ANSWER_SECONDS = 20.0  # each message stored within this


class Probe:
    """Every 100 ms from its own thread: GET /healthz, and a page that needs nothing but the event loop.

    /healthz also waits for the Temporal dev server's health check, which on a loaded machine
    (2 cores shared by many test runs) now and then answers late by itself; the loop-only page
    shows whether the server's event loop was the one that stalled.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.times: list[float] = []
        self.loop_times: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                try:
                    started = time.monotonic()
                    # /register answers from the event loop alone (a fixed 404 for OAuth clients).
                    if http.post(f"{self.url}/register").status_code != 404:
                        self.failures.append("/register did not answer its 404")
                    self.loop_times.append(time.monotonic() - started)
                    started = time.monotonic()
                    status = http.get(f"{self.url}/healthz").status_code
                    if status != 200:
                        self.failures.append(f"status {status}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.times.append(time.monotonic() - started)
                self._stop.wait(0.1)

    @contextlib.contextmanager
    def running(self) -> Iterator[Probe]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()

    def check(self) -> None:
        assert self.times and self.loop_times, "the probe never ran"
        assert not self.failures, self.failures[:5]
        # On this 2-core machine shared by many test runs, a process is now and then not
        # scheduled for a second: two such late answers are tolerated, never one over 3 s.
        # (Before the bounds, one message froze every door of the server for 40 s and more.)
        for what, times in (("loop-only", self.loop_times), ("/healthz", self.times)):
            late = [round(t, 2) for t in times if t >= MAX_PROBE_SECONDS]
            assert len(late) <= 2 and max(times) < 3 * MAX_PROBE_SECONDS, f"late {what} answers: {late} of {len(times)}"


def imap_config(path: Path, server: Dovecot) -> Path:
    path.write_text(
        f"""
[[mailboxes]]
address = "{IMAP_BOX}"
provider = "smtp_imap"
smtp_url = "smtp://{IMAP_USER}@127.0.0.1:9"
imap_url = "imaps://{IMAP_USER}@127.0.0.1:{server.tls_port}"
password_env = "ALICE_PASSWORD"
tls_ca_file = "{server.ca_file}"
"""
    )
    return path


def smtp_deliver(port: int, raw: bytes) -> tuple[int, float]:
    """Deliver over SMTP; the reply code of DATA (250, or the refusal) and how long it took."""
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=SMTP_ANSWER_SECONDS) as client:
        try:
            client.sendmail("stranger@example.org", [SANDBOX_BOX], raw)
            code = 250
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
    return code, time.monotonic() - started


async def read_all(serve: Serve, mailbox: str, expected: int) -> None:
    """check_inbox, then read_email and get_thread on every message: each answers, none stalls the server."""
    async with serve.mcp() as client:
        emails: list[dict[str, object]] = []

        async def listed() -> bool:
            emails.clear()
            cursor = None
            while True:
                page = await client.call_tool(
                    "check_inbox", {"mailbox": mailbox, "limit": 100, **({"cursor": cursor} if cursor else {})}
                )
                assert page.structured_content is not None, page.content
                emails.extend(page.structured_content["emails"])
                cursor = page.structured_content.get("next_cursor")
                if not cursor:
                    return len(emails) >= expected

        deadline = time.monotonic() + 60
        while not await listed():
            assert time.monotonic() < deadline, f"{len(emails)} of {expected} messages arrived in {mailbox}"
            await asyncio.sleep(0.5)
        for email in emails:
            read = await client.call_tool("read_email", {"mailbox": mailbox, "email_id": email["email_id"]})
            assert read.structured_content is not None, read.content
            thread = await client.call_tool("get_thread", {"mailbox": mailbox, "thread_id": email["thread_id"]})
            assert thread.structured_content is not None, thread.content


def flood(port: int, count: int) -> list[socket.socket]:
    opened = []
    for _ in range(count):
        try:
            opened.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    return opened


async def test_hostile_mail_and_an_smtp_flood_never_stall_the_server(
    serve: Serve, dovecot: Dovecot, tmp_path: Path
) -> None:
    """One serve (its start-up is most of the time), under the common 1,024 open-file limit."""
    serve.open_files = 1024
    serve.extra_env.update(
        MAILGATE_CONFIG=str(imap_config(tmp_path / "mailgate.toml", dovecot)),
        MAILGATE_INBOUND_POLL_SECONDS="1",
        ALICE_PASSWORD=IMAP_PASSWORD,
    )
    await asyncio.to_thread(serve.start)
    corpus = {name: hostile(name) for name in BUILDERS}
    with Probe(serve.url).running() as probe:
        for raw in corpus.values():
            await asyncio.to_thread(imap_append, dovecot, "INBOX", raw)
        for name, raw in corpus.items():
            code, took = await asyncio.to_thread(smtp_deliver, serve.smtp_port, raw)
            assert code == 250, f"{name}: SMTP answered {code}"
            assert took < SMTP_ANSWER_SECONDS, f"{name}: SMTP took {took:.1f} s"
        await read_all(serve, SANDBOX_BOX, len(corpus))
        await read_all(serve, IMAP_BOX, len(corpus))
    probe.check()

    # 1,100 idle SMTP connections: before the caps they took every file descriptor (HTTP
    # unreachable) and the log grew by 506 MB in 20 s.
    log_before = (serve.data_dir / "serve.log").stat().st_size
    with Probe(serve.url).running() as probe:
        sockets = await asyncio.to_thread(flood, serve.smtp_port, 1_100)
        try:
            assert len(sockets) == 1_100
            await asyncio.sleep(2)  # held open while the probe runs
        finally:
            for sock in sockets:
                sock.close()
        # Once the flood is gone, mail gets through again.
        code, _ = await asyncio.to_thread(
            smtp_deliver, serve.smtp_port, b"From: a@example.org\r\nSubject: after\r\n\r\nhello\r\n"
        )
        assert code == 250
    probe.check()
    log = (serve.data_dir / "serve.log").read_bytes()[log_before:].decode(errors="replace")
    assert len(log) < 20_000 and log.count("refused") <= 2, log[-4000:]
    assert serve.stop() == 0
