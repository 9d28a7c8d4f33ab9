"""Standard Webhooks signatures, checked against the specification's published test vector."""

from __future__ import annotations

import base64
import os

import pytest

from workflows.trust import standard_webhooks as sw

# The test vector published with the Standard Webhooks specification and its reference libraries.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def test_signing_reproduces_the_published_vector() -> None:
    assert sw.sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_the_published_vector_verifies_inside_the_window_and_not_outside() -> None:
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    assert sw.verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP + 299) == VECTOR_ID
    assert sw.verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP - 299) == VECTOR_ID
    for now in (VECTOR_TIMESTAMP + 301, VECTOR_TIMESTAMP - 301):
        with pytest.raises(sw.SignatureError, match="5 minutes"):
            sw.verify(VECTOR_SECRET, headers, VECTOR_BODY, now=now)


def test_one_matching_signature_among_several_is_enough_for_rotation() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"send_id": "x"}'
    both = f"{sw.sign(old, 'msg_1', 1000, body)} v1,bm9wZQ== {sw.sign(new, 'msg_1', 1000, body)}"
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1000", "webhook-signature": both}
    assert sw.verify(new, headers, body, now=1000) == "msg_1"
    assert sw.verify(old, headers, body, now=1000) == "msg_1"
    with pytest.raises(sw.SignatureError):
        sw.verify(new_secret(), headers, body, now=1000)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"webhook-signature": ""}, "required"),
        ({"webhook-id": ""}, "required"),
        ({"webhook-timestamp": "soon"}, "whole seconds"),
        ({"webhook-id": "msg_other"}, "no webhook-signature matches"),
        ({"webhook-timestamp": str(VECTOR_TIMESTAMP + 1)}, "no webhook-signature matches"),
        ({"webhook-signature": VECTOR_SIGNATURE.replace("v1,", "v2,")}, "no webhook-signature matches"),
    ],
)
def test_missing_wrong_or_changed_parts_are_refused(change: dict[str, str], message: str) -> None:
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    with pytest.raises(sw.SignatureError, match=message):
        sw.verify(VECTOR_SECRET, {**headers, **change}, VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_a_changed_body_is_refused() -> None:
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    with pytest.raises(sw.SignatureError):
        sw.verify(VECTOR_SECRET, headers, b'{"test": 2432232315}', now=VECTOR_TIMESTAMP)


def test_secrets_must_be_base64_with_enough_key() -> None:
    with pytest.raises(ValueError, match="base64"):
        sw.decode_secret("whsec_not base64!")
    with pytest.raises(ValueError, match="16 bytes"):
        sw.decode_secret("whsec_" + base64.b64encode(b"short").decode())
