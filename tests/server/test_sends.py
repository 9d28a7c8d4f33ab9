"""Submitting sends: idempotency, validation, and refusals that write nothing."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.service import RPCError

from server.app import Mailgate
from server.errors import Conflict, InvalidInput, NotFound
from server.validation import MAX_PAYLOAD_BYTES, AttachmentInput
from tests.support.wait import wait_for_status
from workflows.models import SendRequest


async def count_sends(app: Mailgate, settle: float = 1.0) -> int:
    """The sends visibility lists for the mailbox, at the most over ``settle`` seconds: visibility
    follows the workflows by a moment, more so while other workflows (notices) are starting."""
    most = 0
    deadline = asyncio.get_running_loop().time() + settle
    while True:
        page = await app.sends.search(mailbox=app.settings.default_mailbox, limit=100)
        most = max(most, len(page.sends))
        if asyncio.get_running_loop().time() > deadline:
            return most
        await asyncio.sleep(0.1)


async def send(app: Mailgate, **overrides: object) -> object:
    fields: dict[str, object] = {
        "mailbox": app.settings.default_mailbox,
        "to": ["bob@example.com"],
        "subject": "Hello",
        "body": "Body",
        **overrides,
    }
    return await app.sends.submit(**fields)  # type: ignore[arg-type]


async def test_same_key_and_content_is_the_same_send(app: Mailgate) -> None:
    first = await app.sends.submit(
        mailbox=app.settings.default_mailbox,
        to=["bob@example.com"],
        subject="s",
        body="b",
        idempotency_key="k-1",
    )
    again = await app.sends.submit(
        mailbox=app.settings.default_mailbox,
        to=["bob@example.com"],
        subject="s",
        body="b",
        idempotency_key="k-1",
    )
    assert again.send_id == first.send_id
    assert again.message_id == first.message_id
    assert again.deduplicated and not first.deduplicated
    assert await count_sends(app) == 1


async def test_same_key_with_different_content_is_an_error_that_says_so(app: Mailgate) -> None:
    await app.sends.submit(
        mailbox=app.settings.default_mailbox,
        to=["bob@example.com"],
        subject="s",
        body="b",
        idempotency_key="k-2",
    )
    with pytest.raises(Conflict, match="already used for a different email"):
        await app.sends.submit(
            mailbox=app.settings.default_mailbox,
            to=["bob@example.com"],
            subject="s",
            body="changed",
            idempotency_key="k-2",
        )
    assert await count_sends(app) == 1


async def test_without_a_key_identical_content_is_one_send_even_when_retried_concurrently(
    app: Mailgate,
) -> None:
    results = await asyncio.gather(
        *(
            app.sends.submit(mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject="same", body="same")
            for _ in range(8)
        )
    )
    assert len({r.send_id for r in results}) == 1
    assert sum(not r.deduplicated for r in results) == 1
    other = await app.sends.submit(
        mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject="same", body="different"
    )
    assert other.send_id != results[0].send_id


async def test_the_same_key_in_another_mailbox_is_another_send(app: Mailgate) -> None:
    second = "second-" + app.settings.default_mailbox
    await app.mailboxes.create(second, created_by="tests")
    one = await app.sends.submit(
        mailbox=app.settings.default_mailbox,
        to=["b@example.com"],
        subject="s",
        body="b",
        idempotency_key="shared",
    )
    two = await app.sends.submit(mailbox=second, to=["b@example.com"], subject="s", body="b", idempotency_key="shared")
    assert one.send_id != two.send_id


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"to": ["bob@example.com\r\nBcc: eve@evil.com"]}, "control character"),
        ({"to": []}, "at least one recipient"),
        ({"cc": ["alice@example.org)<bob@example.com>"]}, "cc:"),
        ({"subject": "Hi\nBcc: eve@evil.com"}, "subject"),
        ({"subject": "=?UTF-8?Q?=0A?=Bcc: eve@evil.com"}, "encoded word"),
        ({"body": "x" * (512 * 1024 + 1)}, "limit"),
        ({"to": [f"r{i}@example.com" for i in range(51)]}, "at most 50"),
        ({"idempotency_key": "has space"}, "idempotency_key"),
        ({"approval_timeout_hours": 0}, "approval_timeout_hours"),
        ({"approval_timeout_hours": -3}, "approval_timeout_hours"),
        ({"mailbox": "not an address"}, "mailbox"),
    ],
)
async def test_bad_input_is_refused_and_writes_nothing(
    app: Mailgate, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        await send(app, **overrides)
    assert await count_sends(app) == 0


async def test_unknown_mailbox_and_unknown_send_are_clear_errors(app: Mailgate) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        await send(app, mailbox="nobody@mailgate.local")
    with pytest.raises(NotFound, match="no send with id"):
        await app.sends.status("send-aaaaaaaaaaaaaaaaaaaa")
    with pytest.raises(InvalidInput, match="not a send id"):
        await app.sends.status("wf-123; DROP")


async def test_read_only_mailbox_refuses_at_submit(app: Mailgate) -> None:
    await app.mailboxes.set_mode(app.settings.default_mailbox, "read_only", actor="ops", role="human")
    with pytest.raises(Conflict, match="read_only"):
        await send(app)
    assert await count_sends(app) == 0


async def test_fractional_approval_windows_are_allowed(app: Mailgate) -> None:
    result = await send(app, approval_timeout_hours=0.25)
    assert result.expires_at is not None  # type: ignore[attr-defined]
    state = await app.sends.status(result.send_id)  # type: ignore[attr-defined]
    assert state.expires_at is not None
    assert abs((state.expires_at - state.requested_at).total_seconds() - 900) < 5


async def test_a_send_with_nobody_to_notify_starts_no_notice(app: Mailgate) -> None:
    result = await send(app)
    state = await wait_for_status(app, result.send_id, ["pending_approval"])  # type: ignore[attr-defined]
    assert [e.kind for e in state.events] == ["requested"]
    with pytest.raises(RPCError, match="not found"):
        await app.client.get_workflow_handle(f"notify-{result.send_id}-approval-1").describe()  # type: ignore[attr-defined]


async def test_the_request_is_serialised_once_for_its_size_check_and_its_start(
    app: Mailgate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On every agent's call (issue 20): the size check measures the bytes the start hands to Temporal."""
    serialised: list[str] = []
    dump, to_payload = SendRequest.model_dump_json, PydanticJSONPlainPayloadConverter.to_payload

    def dumping(self: SendRequest, **kwargs: Any) -> str:
        serialised.append("model_dump_json")
        return dump(self, **kwargs)

    def converting(self: PydanticJSONPlainPayloadConverter, value: Any) -> Any:
        if isinstance(value, SendRequest):
            serialised.append("payload converter")
        return to_payload(self, value)

    monkeypatch.setattr(SendRequest, "model_dump_json", dumping)
    monkeypatch.setattr(PydanticJSONPlainPayloadConverter, "to_payload", converting)
    result = await send(app)
    assert serialised == ["payload converter"]
    monkeypatch.undo()
    # What started is the request the workflow reads back, whole.
    state = await wait_for_status(app, result.send_id, ["pending_approval"])  # type: ignore[attr-defined]
    assert (state.mailbox, state.original.subject, state.original.body) == (
        app.settings.default_mailbox,
        "Hello",
        "Body",
    )


async def test_a_request_too_large_for_temporal_is_refused_and_writes_nothing(app: Mailgate) -> None:
    attachment = AttachmentInput(filename="a.bin", content_base64=base64.b64encode(b"x" * 1024 * 1024).decode())
    with pytest.raises(InvalidInput, match=f"as Temporal stores it, over mailgate's limit of {MAX_PAYLOAD_BYTES}"):
        await send(app, body="y" * (500 * 1024), attachments=[attachment])
    assert await count_sends(app) == 0
