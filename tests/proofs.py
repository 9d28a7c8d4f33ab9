"""Signing as mailgate's front doors do, for tests that start or signal workflows by hand."""

from __future__ import annotations

from datetime import UTC, datetime

from workflows.models import Decision, SendRequest
from workflows.proofs import proof_key, sign_decision, sign_request

# The key of workers that tests build without an app (time-skipping tests).
TEST_PROOF_KEY = proof_key(b"tests: the secret key of workflows started by hand")


def signed_request(request: SendRequest, key: bytes = TEST_PROOF_KEY) -> SendRequest:
    return sign_request(key, request, datetime.now(UTC))


def signed_decision(send_id: str, decision: Decision, key: bytes = TEST_PROOF_KEY) -> Decision:
    return sign_decision(key, send_id, decision, datetime.now(UTC))
