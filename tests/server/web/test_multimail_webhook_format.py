"""MultiMail's webhook formats, documented and assumed, without a server: signatures and bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from server.errors import InvalidInput
from server.web.webhooks import UnknownSend, multimail_decision, verify_multimail

SECRET = "whsec_" + base64.b64encode(b"sixteen byte key").decode()
BODY = b'{"event_type": "oversight.approved", "message_id": "em_1"}'


def digest(key: bytes, body: bytes = BODY) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()


@pytest.mark.parametrize(
    "header",
    [
        digest(SECRET.encode()).hex(),  # MultiMail's page: HMAC-SHA256 of the raw body with the secret
        "sha256=" + digest(SECRET.encode()).hex(),  # DESIGN.md's contract
        digest(SECRET.encode()).hex().upper(),
        base64.b64encode(digest(SECRET.encode())).decode(),
        digest(b"sixteen byte key").hex(),  # the whsec_ secret's base64 part as the key
    ],
)
def test_signature_spellings_are_accepted(header: str) -> None:
    assert verify_multimail(SECRET, BODY, header)


@pytest.mark.parametrize(
    "header",
    ["", "sha256=", "0" * 64, digest(b"other").hex(), base64.b64encode(digest(b"other")).decode(), "x" * 500],
)
def test_wrong_signatures_are_refused(header: str) -> None:
    assert not verify_multimail(SECRET, BODY, header)
    assert not verify_multimail(SECRET, BODY + b" ", digest(SECRET.encode()).hex())


def test_the_documented_body_names_the_email_and_the_tag_names_the_send() -> None:
    data = {
        "event_type": "oversight.approved",
        "mailbox": "agent@mm.example",
        "message_id": "em_7",
        "thread_id": "th_1",
        "timestamp": "2026-12-01T10:00:00Z",
        "decided_by": "ops@example.com",
    }
    body = json.dumps(data).encode()
    with pytest.raises(UnknownSend) as unknown:
        multimail_decision(data, body)
    assert (unknown.value.email_id, unknown.value.mailbox) == ("em_7", "agent@mm.example")
    found = multimail_decision(data, body, "send-abcdefghij2345abcdef")
    assert found is not None
    send_id, decision = found
    assert send_id == "send-abcdefghij2345abcdef"
    assert (decision.decision, decision.approver, decision.channel) == ("approve", "ops@example.com", "multimail")
    assert multimail_decision({**data, "event_type": "message.received"}, body) is None
    with pytest.raises(InvalidInput):
        multimail_decision({"message_id": "em_7"}, body)
