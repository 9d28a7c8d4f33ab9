"""Standard Webhooks signatures (https://www.standardwebhooks.com): signing out, verifying in.

The signed content is ``{webhook-id}.{webhook-timestamp}.{raw body}``, HMAC-SHA256 with the
secret's bytes (``whsec_`` + base64), sent as ``v1,<base64>``; a header may carry several
space-separated signatures so a sender can rotate its secret without a gap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60


class SignatureError(ValueError):
    """The request is not signed by who it claims (missing, wrong or stale signature)."""


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_...`` secret (the prefix is optional, as in the reference libraries)."""
    raw = secret.strip().removeprefix(PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a Standard Webhooks secret is 'whsec_' followed by base64") from exc
    if len(key) < 16:
        raise ValueError("a Standard Webhooks secret needs at least 16 bytes of key (24 base64 characters)")
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one message."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }


def verify(secret: str, received: Mapping[str, str], body: bytes, now: float) -> str:
    """Check the three headers against the body; returns the webhook-id, or raises SignatureError."""
    webhook_id = received.get("webhook-id", "").strip()
    stamp = received.get("webhook-timestamp", "").strip()
    signatures = received.get("webhook-signature", "").strip()
    if not webhook_id or not stamp or not signatures:
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature headers are required")
    if not stamp.isdigit():
        raise SignatureError("webhook-timestamp must be whole seconds since the epoch")
    timestamp = int(stamp)
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is more than 5 minutes away from now (replayed or clock skew)")
    expected = sign(secret, webhook_id, timestamp, body).encode()
    matched = False
    for candidate in signatures.split():
        version, _, _ = candidate.partition(",")
        # Compare every candidate, in constant time each, so timing tells nothing about which matched.
        if version == "v1" and hmac.compare_digest(candidate.encode(), expected):
            matched = True
    if not matched:
        raise SignatureError("no webhook-signature matches the body (wrong secret, or the body was changed)")
    return webhook_id
