"""Notices to humans: signed webhooks retried by Temporal, and emails through the mailbox's provider."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from server.app import Mailgate
from server.credentials import load_secrets
from server.notifications import notify_config, notify_upgrade_requested
from server.settings import MailboxEntry
from tests.support.app import make_settings, record_sends, unique_mailbox
from tests.support.histories import keep_history
from tests.support.ports import free_port
from tests.support.wait import wait_for_status
from workflows.models import Decision, DeliveryRequest
from workflows.notices import NoticeReport
from workflows.providers.sandbox.viewer import stored_messages
from workflows.trust import standard_webhooks
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


@dataclass
class Receiver:
    """A webhook endpoint that fails the first ``failures`` deliveries with 503."""

    failures: int = 0
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.seen.append((dict(request.headers), body))
        if len(self.seen) <= self.failures:
            return Response("down for maintenance", status_code=503)
        return Response(status_code=204)


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    port = free_port()
    app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task


def notifying_app(
    env: WorkflowEnvironment, tmp_path: Path, url: str, outbox: list[DeliveryRequest] | None = None
) -> tuple[Mailgate, object]:
    settings = make_settings(
        env, tmp_path, port=free_port(), notify_webhook_url=url, notify_webhook_secret=SecretStr(SECRET)
    )
    secrets = load_secrets(settings)
    app = Mailgate.build(settings, env.client, secrets)
    record_sends(app.providers, outbox if outbox is not None else [])

    def worker() -> Worker:
        return build_worker(
            env.client,
            settings.task_queue,
            app.providers,
            notify_config(settings, secrets),
            proof_key=proof_key(secrets.secret_key),
        )

    return app, worker


async def notice_result(app: Mailgate, notice_id: str, timeout: float = 30.0) -> NoticeReport:
    """The notice's report, waiting first for the send to start it (a child starts a moment later)."""
    handle = app.client.get_workflow_handle(notice_id, result_type=NoticeReport)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.wait_for(handle.result(), timeout)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_a_pending_send_posts_a_signed_webhook_retried_until_it_lands(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with receiving(Receiver(failures=2)) as receiver:
        app, worker = notifying_app(temporal_env, tmp_path, receiver.url)
        async with worker():  # type: ignore[operator]
            await app.mailboxes.create(app.settings.default_mailbox, created_by="tests")
            send = await app.sends.submit(
                mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject="Budget", body="Numbers"
            )
            report = await notice_result(app, f"notify-{send.send_id}-approval-1")
            assert report.webhook == "delivered (204)"
            assert len(receiver.seen) == 3
            ids = {headers["webhook-id"] for headers, _ in receiver.seen}
            assert ids == {f"notify-{send.send_id}-approval-1"}
            for headers, body in receiver.seen:
                assert standard_webhooks.verify(SECRET, headers, body, time.time()) in ids
            event = json.loads(receiver.seen[-1][1])
            assert event["type"] == "send.approval_requested"
            assert event["data"]["send_id"] == send.send_id
            assert event["data"]["subject"] == "Budget"
            assert event["data"]["url"] == f"{app.settings.http_url}/sends/{send.send_id}"
            await app.sends.decide(send.send_id, _approve())
            await wait_for_status(app, send.send_id, ["sent"])
            await keep_history(app, send.send_id, "send-notified")
            await keep_history(app, f"notify-{send.send_id}-approval-1", "notify-approval")


async def test_a_notice_outlives_the_worker_that_started_it(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with receiving(Receiver(failures=1)) as receiver:
        app, worker = notifying_app(temporal_env, tmp_path, receiver.url)
        async with worker():  # type: ignore[operator]
            await app.mailboxes.create(app.settings.default_mailbox, created_by="tests")
            send = await app.sends.submit(
                mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject="Restart", body="b"
            )
            while not receiver.seen:
                await asyncio.sleep(0.05)
        # The first worker is gone after one failed attempt; Temporal keeps the retry for the next.
        assert len(receiver.seen) == 1
        async with worker():  # type: ignore[operator]
            report = await notice_result(app, f"notify-{send.send_id}-approval-1")
        assert report.webhook == "delivered (204)"
        assert len(receiver.seen) == 2


async def test_approvers_and_reviewers_get_emails_and_only_private_inboxes_get_links(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    outbox: list[DeliveryRequest] = []
    async with receiving(Receiver()) as receiver:
        app, worker = notifying_app(temporal_env, tmp_path, receiver.url, outbox)
        # boss is a mailgate mailbox (an agent can read it); chief@example.com is a person's own inbox.
        boss, watcher, chief = unique_mailbox("boss"), unique_mailbox("watcher"), "chief@example.com"
        gated, monitored = unique_mailbox("gated"), unique_mailbox("monitored")
        async with worker():  # type: ignore[operator]
            for address in (boss, watcher):
                await app.mailboxes.create(address, created_by="tests")
            await app.mailboxes.ensure(
                MailboxEntry(address=gated, approvers=[boss, chief, "Nameless Approver"]), created_by="tests"
            )
            await app.mailboxes.ensure(
                MailboxEntry(address=monitored, oversight_mode="monitored", reviewers=[watcher]), created_by="tests"
            )
            waiting = await app.sends.submit(mailbox=gated, to=["x@example.com"], subject="Please approve", body="b")
            went = await app.sends.submit(mailbox=monitored, to=["y@example.com"], subject="Sent already", body="b")
            first = await notice_result(app, f"notify-{waiting.send_id}-approval-1")
            await wait_for_status(app, went.send_id, ["sent"])
            second = await notice_result(app, f"notify-{went.send_id}-monitored")
    assert sorted(first.emailed) == sorted([boss, chief])
    assert second.emailed == (watcher,)
    notices = {r.draft.to[0].address: r for r in outbox if r.system}
    assert "/links/" in notices[chief].draft.body
    assert "/links/" not in notices[boss].draft.body
    assert "Decide in the dashboard" in notices[boss].draft.body
    [approval] = [m for m in stored_messages(app.sandbox, boss) if b"Approval needed" in m.raw]
    assert b"Auto-Submitted: auto-generated" in approval.raw
    # boss is a mailbox an agent reads: the notice is kept for the record, never shown to it.
    assert approval.folder == "notices"
    assert (await app.inbox.check(boss)).emails == []
    assert {r.mailbox for r in outbox if r.system} == {"mailgate@mailgate.local"}  # From: never the agent
    [review] = [m for m in stored_messages(app.sandbox, watcher) if b"please review" in m.raw]
    assert b"Sent already" in review.raw
    # The agent reads its own mailbox: the notices must not be in its Sent folder.
    for mailbox in (gated, monitored):
        assert all(b"[mailgate]" not in m.raw for m in stored_messages(app.sandbox, mailbox))
    assert {json.loads(body)["type"] for _, body in receiver.seen} == {
        "send.approval_requested",
        "send.monitored_sent",
    }


def _approve() -> Decision:
    return Decision(decision="approve", approver="ops", channel="test")


async def test_an_upgrade_request_notifies_the_approvers_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    outbox: list[DeliveryRequest] = []
    async with receiving(Receiver()) as receiver:
        app, worker = notifying_app(temporal_env, tmp_path, receiver.url, outbox)
        boss, chief, mailbox = unique_mailbox("boss"), "chief@example.com", unique_mailbox("climber")
        async with worker():  # type: ignore[operator]
            await app.mailboxes.create(boss, created_by="tests")
            await app.mailboxes.ensure(MailboxEntry(address=mailbox, approvers=[boss, chief]), created_by="tests")
            upgrade = await app.mailboxes.request_upgrade(
                mailbox, "monitored", "routine mail only", requested_by="agent"
            )
            # Started again (a retried request): still one notice.
            await notify_upgrade_requested(
                app.client,
                app.settings,
                mailbox,
                upgrade.request.request_id,
                "monitored",
                "routine mail only",
                "agent",
                proof_key(app.secrets.secret_key),
            )
            report = await notice_result(app, f"notify-upgrade-{upgrade.request.request_id}")
    assert sorted(report.emailed) == sorted([boss, chief])
    notices = {r.draft.to[0].address: r.draft.body for r in outbox if r.system}
    assert upgrade.code in notices[chief]
    assert upgrade.code not in notices[boss]
    assert "routine mail only" in notices[boss]
    [(_, body)] = receiver.seen
    event = json.loads(body)
    assert event["type"] == "mailbox.upgrade_requested"
    assert event["data"]["mode"] == "monitored"
    assert upgrade.code not in body.decode()
