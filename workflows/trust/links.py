"""One-click decision links: a signed, expiring claim that one approver decides one send one way.

The worker signs links when it emails approvers; the HTTP app verifies them. Both derive the
key from the server's secret key, so nothing secret travels through workflow payloads.
Single use is enforced where the decision lands: the nonce becomes the signal's decision id,
and the send workflow (and the front door, from its history) refuses a nonce seen before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Literal

from pydantic import ValidationError

from workflows.models import Decision, Frozen

Choice = Literal["approve", "reject"]


class LinkError(ValueError):
    """A link that is forged, damaged or expired."""


class LinkClaim(Frozen):
    send_id: str
    decision: Choice
    approver: str
    expires: int
    nonce: str
    # When its notice was made (unix seconds; 0 in links made before this field). A trash request
    # asked again after it expired runs again under the same id, and the same nonce: the front
    # door refuses a link older than the run it would decide.
    issued: int = 0

    @property
    def decision_id(self) -> str:
        return f"link:{self.nonce}"

    def decision_for(self, reason: str | None) -> Decision:
        """The decision this link stands for, as a send or a trash request receives it."""
        return Decision(
            decision=self.decision,
            approver=self.approver,
            reason=reason or f"one-click link emailed to {self.approver}",
            channel="link",
            decision_id=self.decision_id,
        )


def link_key(secret_key: bytes) -> bytes:
    # A key of its own, so a link signature can never be replayed as a session or any other token.
    return hmac.new(secret_key, b"mailgate one-click links v1", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(key: bytes, claim: LinkClaim) -> str:
    payload = _b64(json.dumps(claim.model_dump(), separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def read_token(key: bytes, token: str, now: float) -> LinkClaim:
    payload, _, signature = token.partition(".")
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(signature.encode(), expected.encode()):
        raise LinkError("this link is not valid: it was damaged or not issued by this mailgate")
    try:
        claim = LinkClaim.model_validate_json(_unb64(payload))
    except (ValidationError, binascii.Error, ValueError) as exc:
        raise LinkError("this link is not valid: its content cannot be read") from exc
    if claim.expires <= now:
        raise LinkError("this link has expired; open the dashboard to decide")
    return claim


def nonce(key: bytes, *parts: str) -> str:
    """A stable nonce, so a retried notification activity writes the very same links."""
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()[:24]


def upgrade_code(secret_key: bytes, request_id: str, length: int = 8) -> str:
    """The one-time code of an upgrade request: derived from the server key, so it is never stored."""
    digest = hmac.new(secret_key, f"upgrade:{request_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:length]
