"""An approval waits for the worker once: the update that decides, not also a query before it.

Under load, the query the approver API used to ask first (for the send's mailbox and requester)
queued behind the worker's backlog and ran out of its deadline: the approval was answered
`503` although the update alone would have gone through (issue 20).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import (
    Client,
    DescribeWorkflowInput,
    Interceptor,
    OutboundInterceptor,
    QueryWorkflowInput,
    StartWorkflowUpdateInput,
    WorkflowExecutionDescription,
    WorkflowUpdateHandle,
)
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.credentials import load_secrets
from server.identities import NewPerson
from server.notifications import notify_config
from server.sends import Sends
from tests.support.app import make_settings
from tests.support.wait import provisioned, wait_for_status
from tests.support.web import Web, serve_web
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker


def as_person(web: Web, person: NewPerson) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {person.api_token}"}, timeout=30)


class Counting(Interceptor):
    """Counts the calls to Temporal that need a worker to answer."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.described: list[str] = []  # workflow ids; a describe needs no worker, but is a round trip

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        calls, described = self.calls, self.described

        class Outbound(OutboundInterceptor):
            async def describe_workflow(self, input: DescribeWorkflowInput) -> WorkflowExecutionDescription:
                described.append(input.id)
                return await super().describe_workflow(input)

            async def query_workflow(self, input: QueryWorkflowInput) -> Any:
                calls.append(f"query {input.query}")
                return await super().query_workflow(input)

            async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> WorkflowUpdateHandle[Any]:
                calls.append(f"update {input.update}")
                return await super().start_workflow_update(input)

        return Outbound(next)


@pytest.fixture
async def counted(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[tuple[Web, Counting]]:
    counting = Counting()
    config = temporal_env.client.config()
    config["interceptors"] = [counting]
    client = Client(**config)
    settings = make_settings(temporal_env, tmp_path)
    secrets = load_secrets(settings)
    app = Mailgate.build(settings, client, secrets)
    worker = build_worker(
        temporal_env.client,
        settings.task_queue,
        app.providers,
        notify_config(settings, secrets),
        proof_key=proof_key(secrets.secret_key),
    )
    async with worker, serve_web(app) as web:
        await app.mailboxes.create(settings.default_mailbox, created_by="tests")
        await provisioned(app, settings.default_mailbox)
        yield web, counting


async def test_approving_and_rejecting_over_the_api_ask_the_worker_once(counted: tuple[Web, Counting]) -> None:
    web, counting = counted
    mailbox = web.app.settings.default_mailbox
    approved_id = (await web.app.sends.submit(mailbox=mailbox, to=["bob@example.com"], subject="a", body="b")).send_id
    rejected_id = (await web.app.sends.submit(mailbox=mailbox, to=["bob@example.com"], subject="c", body="d")).send_id
    counting.calls.clear()

    approved = await web.admin.post(f"/api/approvals/{approved_id}/approve", json={"approver": "alice"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["decision"]["approver"] == "alice"
    rejected = await web.admin.post(
        f"/api/approvals/{rejected_id}/reject", json={"approver": "alice", "reason": "not now"}
    )
    assert rejected.status_code == 200, rejected.text

    assert counting.calls == ["update decide", "update decide"]
    await wait_for_status(web.app, approved_id, ["sent"])
    assert [c.subject for c in web.app.sandbox.deliveries(mailbox)] == ["a"]


async def test_a_persons_approval_looks_up_the_send_without_the_worker(counted: tuple[Web, Counting]) -> None:
    web, counting = counted
    mailbox = web.app.settings.default_mailbox
    ann = web.app.identities.add_person(f"ann-{uuid.uuid4().hex[:8]}@example.com", approves=[mailbox])
    reviewer = web.app.identities.add_person(f"rev-{uuid.uuid4().hex[:8]}@example.com", reviews=[mailbox])
    send_id = (await web.app.sends.submit(mailbox=mailbox, to=["bob@example.com"], subject="a", body="b")).send_id
    counting.calls.clear()

    async with as_person(web, reviewer) as rev, as_person(web, ann) as a:
        # Who may decide is still checked from the send's mailbox: a reviewer may not.
        assert (await rev.post(f"/api/approvals/{send_id}/approve", json={})).status_code == 403
        approved = await a.post(f"/api/approvals/{send_id}/approve", json={})
    assert approved.status_code == 200, approved.text
    assert approved.json()["decision"]["approver"] == ann.email
    assert counting.calls == ["update decide"]


async def test_a_persons_approval_of_a_known_send_asks_temporal_nothing_before_the_update(
    counted: tuple[Web, Counting],
) -> None:
    """A send's mailbox and requester are fixed when it starts: the front door that started it, or
    that looked it up once, does not describe it again before each approval (issue 20)."""
    web, counting = counted
    app, mailbox = web.app, web.app.settings.default_mailbox
    ann = app.identities.add_person(f"ann-{uuid.uuid4().hex[:8]}@example.com", approves=[mailbox])
    reviewer = app.identities.add_person(f"rev-{uuid.uuid4().hex[:8]}@example.com", reviews=[mailbox])
    ours = (await app.sends.submit(mailbox=mailbox, to=["bob@example.com"], subject="a", body="b")).send_id
    # Started by another front door (another process, say): this one looks it up once.
    other = Sends(app.client, app.settings, app.mailboxes, proof_key(app.secrets.secret_key))
    theirs = (await other.submit(mailbox=mailbox, to=["bob@example.com"], subject="c", body="d")).send_id
    counting.described.clear()

    async with as_person(web, reviewer) as rev, as_person(web, ann) as a:
        assert (await rev.post(f"/api/approvals/{theirs}/approve", json={})).status_code == 403
        assert (await a.post(f"/api/approvals/{theirs}/approve", json={})).status_code == 200
        assert (await a.post(f"/api/approvals/{ours}/approve", json={})).status_code == 200
    assert [d for d in counting.described if d in (ours, theirs)] == [theirs]
    # Who may decide is still checked from the send's mailbox, known or not.
    refused = await a_send_of_someone_elses_mailbox_is_refused(web, ann)
    assert refused.status_code == 404 and "not yours" in refused.json()["error"], refused.text


async def a_send_of_someone_elses_mailbox_is_refused(web: Web, person: NewPerson) -> httpx.Response:
    box = f"other-{uuid.uuid4().hex[:8]}@mailgate.local"
    await web.app.mailboxes.create(box, created_by="tests")
    send_id = (await web.app.sends.submit(mailbox=box, to=["bob@example.com"], subject="e", body="f")).send_id
    async with as_person(web, person) as client:
        return await client.post(f"/api/approvals/{send_id}/approve", json={})


async def test_an_unknown_send_is_still_not_found(counted: tuple[Web, Counting]) -> None:
    web, _ = counted
    missing = await web.admin.post("/api/approvals/send-aaaaaaaaaaaaaaaaaaaa/approve", json={"approver": "alice"})
    assert missing.status_code == 404
    assert "no send with id" in missing.json()["error"]
