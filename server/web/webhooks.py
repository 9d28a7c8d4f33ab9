"""Signed decisions from other systems: MultiMail's webhooks and any Standard Webhooks sender.

Both verify the signature over the raw body before reading it, then hand the decision to the
send as a signal (Sends.signal_decision), which needs no running worker: a decision that
arrives while workers are down is stored and applies when one returns. The decision id is
derived from the delivery (webhook-id, or MultiMail's event), so redeliveries have one effect.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.app import Mailgate
from server.errors import InvalidInput, MailgateError, NotFound
from server.sends import check_person
from server.web.bodies import MIB, TooLarge, read_limited
from workflows import standard_webhooks
from workflows.models import Decision

MULTIMAIL_EVENTS: dict[str, Literal["approve", "reject"]] = {
    "approval.approved": "approve",
    "approval.rejected": "reject",
    "oversight.approved": "approve",
    "oversight.rejected": "reject",
}
_SEND_ID = re.compile(r"send-[a-z2-7]{20}")


class ApprovalEvent(BaseModel):
    """The body of POST /webhooks/approvals. Unknown fields are allowed: senders add their own."""

    model_config = ConfigDict(extra="ignore")

    send_id: str = Field(min_length=1, max_length=100)
    decision: Literal["approve", "reject"]
    approver: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def verify_multimail(secret: str, body: bytes, header: str) -> bool:
    """X-MultiMail-Signature: hex HMAC-SHA256 of the raw body, bare or as ``sha256=<hex>``."""
    given = header.strip()
    given = given.split("=", 1)[1] if given.lower().startswith("sha256=") else given
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return bool(given) and hmac.compare_digest(given.lower().encode(), expected.encode())


async def _decide(app: Mailgate, send_id: str, decision: Decision) -> Response:
    try:
        outcome = await app.sends.signal_decision(send_id, decision)
    except MailgateError as exc:
        return _error(exc.http_status, str(exc))
    return JSONResponse({"status": outcome, "send_id": send_id, "decision": decision.decision})


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    return data


def _text(*candidates: object) -> str | None:
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None


def multimail_decision(data: dict[str, Any], body: bytes) -> tuple[str, Decision] | None:
    """The send and decision a MultiMail event carries; None for events that decide nothing.

    Accepted shapes: the seed's flat ``{"type", "workflow_id", "approver_email", "pending_id"}``
    and MultiMail's envelope ``{"event"|"type", "timestamp", "data": {"email_id", ...}}``. The send
    is named by ``workflow_id``/``send_id``, by ``mailgate_send_id`` in the event's ``metadata``
    or ``tags`` (set when the email was handed to MultiMail), or by a pending id that is a send id.
    """
    event = _text(data.get("type"), data.get("event"))
    if event is None:
        raise InvalidInput("the event has no type (expected 'type' or 'event')")
    choice = MULTIMAIL_EVENTS.get(event)
    if choice is None:
        return None
    inner = data.get("data") if isinstance(data.get("data"), dict) else {}
    assert isinstance(inner, dict)
    extras = [inner.get("metadata"), inner.get("tags"), data.get("metadata")]
    tagged = [e.get("mailgate_send_id") or e.get("send_id") for e in extras if isinstance(e, dict)]
    pending = _text(data.get("pending_id"), inner.get("pending_id"), inner.get("email_id"))
    send_id = _text(
        data.get("workflow_id"), data.get("send_id"), inner.get("workflow_id"), inner.get("send_id"), *tagged
    )
    if send_id is None and pending is not None and _SEND_ID.fullmatch(pending):
        send_id = pending
    if send_id is None:
        if pending is not None:
            raise NotFound(
                f"no send is known for MultiMail email {pending}: give the send id as workflow_id, or as "
                "mailgate_send_id in the event's metadata or tags"
            )
        raise InvalidInput("the event names no send (workflow_id, send_id, or pending_id/email_id)")
    approver = _text(
        data.get("approver_email"), inner.get("decided_by"), inner.get("approved_by"), data.get("approver")
    )
    reason = _text(data.get("reason"), inner.get("reason"))
    # A redelivered event is byte-identical (or carries the same event id): one decision id for all copies.
    event_id = _text(data.get("id"), data.get("event_id")) or hashlib.sha256(body).hexdigest()[:32]
    try:
        decision = Decision(
            decision=choice,
            approver=check_person(approver or "multimail"),
            reason=reason[:2000] if reason else None,
            channel="multimail",
            decision_id=f"multimail:{event_id}",
        )
    except ValidationError as exc:
        raise InvalidInput(str(exc)) from exc
    return send_id, decision


def routes(app: Mailgate) -> list[Route]:
    settings = app.settings

    async def approvals(request: Request) -> Response:
        secret = settings.approval_webhook_secret
        if secret is None:
            return _error(503, "this webhook is off: set MAILGATE_APPROVAL_WEBHOOK_SECRET to enable it")
        try:
            body = await read_limited(request, MIB)
        except TooLarge as exc:
            return _error(413, str(exc))
        try:
            webhook_id = standard_webhooks.verify(secret.get_secret_value(), request.headers, body, time.time())
        except standard_webhooks.SignatureError as exc:
            return _error(401, str(exc))
        try:
            event = ApprovalEvent.model_validate(_json_object(body))
            decision = Decision(
                decision=event.decision,
                approver=check_person(event.approver),
                reason=event.reason,
                channel="webhook",
                decision_id=f"webhook:{webhook_id}",
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
            return _error(400, problems)
        except MailgateError as exc:
            return _error(exc.http_status, str(exc))
        return await _decide(app, event.send_id, decision)

    async def multimail(request: Request) -> Response:
        secret = settings.multimail_webhook_secret
        if secret is None:
            return _error(503, "this webhook is off: set MAILGATE_MULTIMAIL_WEBHOOK_SECRET to enable it")
        try:
            body = await read_limited(request, MIB)
        except TooLarge as exc:
            return _error(413, str(exc))
        if not verify_multimail(secret.get_secret_value(), body, request.headers.get("x-multimail-signature", "")):
            return _error(401, "X-MultiMail-Signature is missing or does not match the body")
        try:
            found = multimail_decision(_json_object(body), body)
        except MailgateError as exc:
            return _error(exc.http_status, str(exc))
        if found is None:
            return JSONResponse({"status": "ignored", "reason": "this event type decides nothing"})
        return await _decide(app, *found)

    return [
        Route("/webhooks/approvals", approvals, methods=["POST"]),
        Route("/webhooks/multimail", multimail, methods=["POST"]),
    ]
