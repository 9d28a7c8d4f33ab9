"""A rolling upgrade: a newer front door adds a field to what it puts in Temporal, and an older
worker (or front door) still reads it. Temporal payloads and memos ignore fields they do not
know; what people and agents submit (API bodies) still refuses them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

from pydantic import BaseModel

import workflows
from server.credentials import load_secrets
from tests.support.proofs import signed_request
from tests.support.temporal_access import send_request, start_send
from tests.support.wait import wait_for_status
from tests.support.web import Web
from workflows.models import MailboxConfig
from workflows.temporal import data_converter
from workflows.trust.proofs import proof_key

NEWER = {"added_by_a_newer_version": {"any": ["shape"]}}


async def test_a_send_started_with_fields_this_worker_does_not_know_runs(web: Web) -> None:
    app = web.app
    mailbox = app.settings.default_mailbox
    request = signed_request(
        send_request(mailbox, subject="From a newer door", body="b", mode="gated_send", notify=False),
        proof_key(load_secrets(app.settings).secret_key),
    )
    send_id = request.send_id
    # The JSON a newer front door would write: new fields at the top and in a nested model.
    payload: dict[str, Any] = request.model_dump(mode="json") | NEWER
    payload["draft"] |= NEWER
    payload["draft"]["to"][0] |= NEWER
    await start_send(app.client, payload, task_queue=app.settings.task_queue)
    await wait_for_status(app, send_id, {"pending_approval"})

    # An approval body with a field the API does not know is refused, and changes nothing.
    unknown = await web.admin.post(f"/api/approvals/{send_id}/approve", json={"approver": "alice"} | NEWER)
    assert unknown.status_code == 400 and "added_by_a_newer_version" in unknown.text
    assert (await app.sends.status(send_id)).status == "pending_approval"

    approved = await web.admin.post(f"/api/approvals/{send_id}/approve", json={"approver": "alice"})
    assert approved.status_code == 200, approved.text
    state = await wait_for_status(app, send_id, {"sent"})
    assert [c.recipient for c in app.sandbox.deliveries(mailbox)] == ["bob@example.com"]
    assert state.original.subject == "From a newer door"


async def test_a_memo_with_fields_this_version_does_not_know_decodes() -> None:
    converter = data_converter().payload_converter
    [payload] = converter.to_payloads([{"address": "a@example.com", "mode": "monitored"} | NEWER])
    config = converter.from_payload(payload, MailboxConfig)
    assert config == MailboxConfig(address="a@example.com", mode="monitored")


def test_no_model_of_the_workflows_package_forbids_unknown_fields() -> None:
    forbidding = []
    for info in pkgutil.walk_packages(workflows.__path__, "workflows."):
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseModel) and cls.__module__ == info.name and cls.model_config.get("extra") == "forbid":
                forbidding.append(f"{info.name}.{name}")
    assert not forbidding, f"Temporal payload models must ignore unknown fields: {forbidding}"
