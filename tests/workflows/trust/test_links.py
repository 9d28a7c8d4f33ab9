"""One-click link tokens: signed, expiring, and bound to one send, decision and approver."""

from __future__ import annotations

import pytest

from workflows.trust.links import LinkClaim, LinkError, link_key, make_token, nonce, read_token

KEY = link_key(b"server secret key for tests")


def claim(**overrides: object) -> LinkClaim:
    values: dict[str, object] = {
        "send_id": "send-aaaaaaaaaaaaaaaaaaaa",
        "decision": "approve",
        "approver": "boss@example.com",
        "expires": 2_000_000_000,
        "nonce": nonce(KEY, "notice", "boss@example.com", "approve"),
        **overrides,
    }
    return LinkClaim.model_validate(values)


def test_a_token_reads_back_as_its_claim() -> None:
    token = make_token(KEY, claim())
    assert read_token(KEY, token, now=1_900_000_000) == claim()
    assert claim().decision_id.startswith("link:")


def test_changing_any_part_of_the_token_breaks_it() -> None:
    token = make_token(KEY, claim())
    payload, _, signature = token.partition(".")
    forged = make_token(KEY, claim(decision="reject")).partition(".")[0] + "." + signature
    for bad in (forged, payload + "." + signature[:-2] + "AA", payload, "", "x.y"):
        with pytest.raises(LinkError, match="not valid"):
            read_token(KEY, bad, now=0)
    with pytest.raises(LinkError):
        read_token(link_key(b"another server"), token, now=0)


def test_an_expired_token_is_refused() -> None:
    token = make_token(KEY, claim(expires=1000))
    with pytest.raises(LinkError, match="expired"):
        read_token(KEY, token, now=1000)


def test_nonces_are_stable_per_notice_recipient_and_choice() -> None:
    assert nonce(KEY, "n1", "a@x", "approve") == nonce(KEY, "n1", "a@x", "approve")
    assert nonce(KEY, "n1", "a@x", "approve") != nonce(KEY, "n1", "a@x", "reject")
    assert nonce(KEY, "n1", "a@x", "approve") != nonce(link_key(b"other"), "n1", "a@x", "approve")
