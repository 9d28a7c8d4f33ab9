"""Encrypted history: with keys configured, Temporal stores no plaintext of an email."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment

from server.app import Mailgate
from server.connect import connect
from server.credentials import load_secrets
from tests.support.app import make_settings
from tests.support.wait import wait_for_status
from tests.support.web import serve_web
from workflows.ids import mailbox_workflow_id
from workflows.models import Decision
from workflows.providers.base import ProviderSet
from workflows.providers.sandbox.provider import SandboxProvider
from workflows.temporal import data_converter
from workflows.trust.codec import REFUSED, CodecError, EncryptionCodec, parse_keys
from workflows.trust.proofs import proof_key
from workflows.worker import build_worker

MARKER = "Zebra-Quokka-7731"


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def test_payloads_round_trip_and_keys_rotate() -> None:
    old, new = key(), key()
    before = EncryptionCodec(parse_keys(f"k1:{old}"))
    after = EncryptionCodec(parse_keys(f"k2:{new},k1:{old}"))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=MARKER.encode())
    sealed_old = (await before.encode([plain]))[0]
    assert MARKER.encode() not in sealed_old.SerializeToString()
    assert (await after.decode([sealed_old]))[0] == plain
    sealed_new = (await after.encode([plain]))[0]
    assert sealed_new.metadata["encryption-key-id"] == b"k2"
    with pytest.raises(CodecError, match="k2"):
        await before.decode([sealed_new])
    tampered = Payload(metadata=sealed_new.metadata, data=sealed_new.data[:-1] + bytes([sealed_new.data[-1] ^ 1]))
    with pytest.raises(InvalidTag):
        await after.decode([tampered])


@pytest.mark.parametrize("spec", ["", "nokey", "k1:not-base64!", f"k1:{base64.b64encode(b'short').decode()}"])
def test_bad_key_specs_are_refused(spec: str) -> None:
    with pytest.raises(CodecError):
        parse_keys(spec)


@pytest.fixture
async def sealed_app(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Mailgate]:
    settings = make_settings(
        temporal_env, tmp_path, encryption_keys=SecretStr(f"main:{key()}"), temporal_ui_url="http://127.0.0.1:8233"
    )
    client = await connect(settings)
    app = Mailgate.build(settings, client, load_secrets(settings))
    async with build_worker(
        client,
        settings.task_queue,
        ProviderSet(SandboxProvider(app.sandbox)),
        proof_key=proof_key(app.secrets.secret_key),
    ):
        await app.mailboxes.create(settings.default_mailbox, created_by="tests", display_name=MARKER)
        yield app


async def test_stored_history_holds_no_plaintext_of_the_email(
    sealed_app: Mailgate, temporal_env: WorkflowEnvironment
) -> None:
    app = sealed_app
    result = await app.sends.submit(
        mailbox=app.settings.default_mailbox,
        to=[f"{MARKER} <someone@example.com>"],
        subject=f"Subject {MARKER}",
        body=f"Body {MARKER}",
    )
    await app.sends.decide(result.send_id, Decision(decision="approve", approver="alice", reason=MARKER))
    state = await wait_for_status(app, result.send_id, ["sent"])
    assert MARKER in state.original.subject  # mailgate itself reads it fine

    # A client without the key sees what Temporal stores.
    raw = temporal_env.client
    for workflow_id in (result.send_id, mailbox_workflow_id(result.mailbox)):
        history = await raw.get_workflow_handle(workflow_id).fetch_history()
        stored = b"".join(event.SerializeToString() for event in history.events)
        assert MARKER.encode() not in stored, workflow_id
        assert b"someone@example.com" not in stored, workflow_id
        info = (await raw.get_workflow_handle(workflow_id).describe()).raw_description.workflow_execution_info
        assert MARKER.encode() not in info.memo.SerializeToString()
    description = await raw.get_workflow_handle(result.send_id).describe()
    search = description.raw_description.workflow_execution_info.search_attributes.SerializeToString()
    assert b"example.com" not in search
    assert app.sandbox.deliveries(app.settings.default_mailbox)[0].subject == f"Subject {MARKER}"


async def test_the_codec_endpoint_decodes_for_an_authorised_temporal_ui(sealed_app: Mailgate) -> None:
    async with serve_web(sealed_app) as web:
        codec = sealed_app.settings.codec()
        assert codec is not None
        sealed = (await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"hello"')]))[0]
        body = {
            "payloads": [
                {
                    "metadata": {k: base64.b64encode(v).decode() for k, v in sealed.metadata.items()},
                    "data": base64.b64encode(sealed.data).decode(),
                }
            ]
        }
        ui = sealed_app.settings.temporal_ui
        assert ui is not None
        decoded = await web.admin.post("/codec/decode", json=body, headers={"Origin": ui})
        assert decoded.status_code == 200, decoded.text
        assert base64.b64decode(decoded.json()["payloads"][0]["data"]) == b'"hello"'
        assert decoded.headers["access-control-allow-origin"] == ui
        preflight = await web.anonymous.options("/codec/decode", headers={"Origin": ui})
        assert preflight.status_code == 204
        assert (await web.anonymous.post("/codec/decode", json=body)).status_code == 401
        assert (await web.agent.post("/codec/decode", json=body)).status_code == 403
        foreign = await web.admin.post("/codec/decode", json=body, headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        malformed = await web.admin.post("/codec/decode", json={"payloads": [{"data": "%%%"}]})
        assert malformed.status_code == 400


async def test_an_unencrypted_payload_is_not_read_when_keys_are_set() -> None:
    """Plain JSON written straight into Temporal (no key) becomes an encoding no converter reads:
    a start with it never runs, a signal is dropped (tests/e2e/test_temporal_forgery.py)."""
    codec = EncryptionCodec(parse_keys(f"k1:{base64.b64encode(os.urandom(32)).decode()}"))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"decision": "approve"}')
    [opened] = await codec.decode([plain])
    assert opened.metadata["encoding"] == REFUSED and b"approve" not in opened.data
    with pytest.raises(Exception, match="unencrypted-refused"):
        data_converter().payload_converter.from_payloads([opened])
