"""Decisions a send workflow can check itself: an Ed25519 signature by the front door.

A decision's proof (``proofs.py``) is an HMAC under a key that never enters history, so a
workflow can only check it by asking an activity: a round trip and a second workflow task for
every approval. The front door also signs the decision with an Ed25519 key derived from the
same secret, and puts the public half in the send's request when it starts the send. The
workflow verifies with that public key, in the workflow task where the decision arrives.

What this does not replace: the delivery activity still checks the request's and the
decision's HMAC proofs with the worker's own key. A workflow started straight in Temporal with
a public key of the starter's choosing accepts that starter's signatures, and still delivers
nothing. Verifying is deterministic (no clock, no randomness), so it is safe in workflow code.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from workflows.models import Decision
from workflows.trust.proofs import ProofCheck, decision_check


def decision_signing_key(proof_key: bytes) -> Ed25519PrivateKey:
    """The front doors' signing key, the same for every process that shares the secret key."""
    return Ed25519PrivateKey.from_private_bytes(hmac.new(proof_key, b"decision signatures v1", hashlib.sha256).digest())


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes_raw().hex()


def _message(check: ProofCheck) -> bytes:
    signed = ["signed", check.kind, check.subject, check.fields, check.proof]
    return json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign_check(key: Ed25519PrivateKey, check: ProofCheck) -> str:
    return key.sign(_message(check)).hex()


def signature_holds(public_hex: str, check: ProofCheck, signature: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(bytes.fromhex(signature), _message(check))
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_decision_key(key: Ed25519PrivateKey, send_id: str, decision: Decision) -> Decision:
    """The decision with its signature: over the same fields as its proof, and the proof itself."""
    return decision.model_copy(update={"signature": sign_check(key, decision_check(send_id, decision))})
