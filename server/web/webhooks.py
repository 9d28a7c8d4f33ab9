"""Signed decisions from other systems: MultiMail's webhooks and any Standard Webhooks sender.

Both verify the signature over the raw body before reading it, then hand the decision to the
send as a signal (Sends.signal_decision), which needs no running worker: a decision that
arrives while workers are down is stored and applies when one returns. The decision id is
derived from the delivery (webhook-id, or MultiMail's event), so redeliveries have one effect.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
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
from temporalio.service import RPCError

from server.app import Mailgate
from server.deciders import requester_refusal
from server.errors import Forbidden, InvalidInput, MailgateError, NotFound
from server.trash_approvals import is_trash_id, parse_trash_id
from server.validation import check_person, parse_send_id
from server.web.bodies import MIB, TooLarge, read_limited
from workflows.models import Decision
from workflows.providers.base import DeliveryError, EmailNotFound
from workflows.providers.multimail.provider import MultiMailProvider
from workflows.trust import standard_webhooks

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


def _multimail_keys(secret: str) -> list[bytes]:
    """The signing secret as MultiMail shows it (``whsec_...``, used as UTF-8, as its page says),
    and, for a ``whsec_`` secret, the bytes its base64 part stands for (the Standard Webhooks way)."""
    keys = [secret.encode()]
    if secret.startswith("whsec_"):
        with contextlib.suppress(binascii.Error, ValueError):
            keys.append(base64.b64decode(secret.removeprefix("whsec_"), validate=True))
    return keys


def verify_multimail(secret: str, body: bytes, header: str) -> bool:
    """X-MultiMail-Signature: HMAC-SHA256 of the raw body with the signing secret.

    MultiMail's page documents the header and the HMAC but not the digest's spelling, so hex
    (bare or ``sha256=<hex>``, what DESIGN.md promises) and base64 are both accepted.
    """
    given = header.strip()
    given = given.split("=", 1)[1] if given.lower().startswith("sha256=") else given
    if not given or len(given) > 200:
        return False
    matched = False
    for key in _multimail_keys(secret):
        digest = hmac.new(key, body, hashlib.sha256).digest()
        for spelled in (digest.hex(), base64.b64encode(digest).decode()):
            candidate = given.lower() if len(given) == 64 else given
            matched |= hmac.compare_digest(candidate.encode(), spelled.encode())
    return matched


async def _requester(app: Mailgate, some_id: str) -> str | None:
    """Who asked for the send or trash request: from its memo (no worker needed), else from the send."""
    checked = parse_trash_id(some_id) if is_trash_id(some_id) else parse_send_id(some_id)
    try:
        requester = (await (await app.client.get_workflow_handle(checked).describe()).memo()).get("requester")
    except RPCError:
        return None  # unknown: the decision itself says so
    if isinstance(requester, str) or is_trash_id(some_id):
        return requester if isinstance(requester, str) else None
    with contextlib.suppress(MailgateError):  # a send started before its memo named the requester
        return (await app.sends.status(some_id)).requester
    return None


async def _decide(app: Mailgate, send_id: str, decision: Decision, *, trash: bool = False) -> Response:
    """``trash``: the id may name a bulk trash request too (the Standard Webhooks door; MultiMail
    holds no trash requests, so its webhook decides sends only)."""
    try:
        if trash and is_trash_id(send_id):
            outcome = await app.trash.signal_decision(send_id, decision)
        else:
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


class UnknownSend(NotFound):
    """The event names MultiMail's email, not the send: MultiMail's tag on the email says which."""

    def __init__(self, email_id: str, mailbox: str | None) -> None:
        super().__init__(
            f"no send is known for MultiMail email {email_id}: give the send id as workflow_id, or as "
            "mailgate_send_id in the event's metadata or tags"
        )
        self.email_id = email_id
        self.mailbox = mailbox


def multimail_decision(data: dict[str, Any], body: bytes, send_id: str | None = None) -> tuple[str, Decision] | None:
    """The send and decision a MultiMail event carries; None for events that decide nothing.

    Accepted shapes: MultiMail's documented body ``{"event_type", "mailbox", "message_id",
    "thread_id", "timestamp", ...}``, the seed's flat ``{"type", "workflow_id", "approver_email",
    "pending_id"}`` and the envelope ``{"event"|"type", "timestamp", "data": {"email_id", ...}}``.
    The send is named by ``workflow_id``/``send_id``, by ``mailgate_send_id`` in the event's
    ``metadata`` or ``tags``, by a pending id that is a send id, or (``send_id``, raising
    ``UnknownSend`` until given) by the tag on the MultiMail email the event names.
    """
    event = _text(data.get("event_type"), data.get("type"), data.get("event"))
    if event is None:
        raise InvalidInput("the event has no type (expected 'event_type', 'type' or 'event')")
    choice = MULTIMAIL_EVENTS.get(event)
    if choice is None:
        return None
    inner = data.get("data") if isinstance(data.get("data"), dict) else {}
    assert isinstance(inner, dict)
    extras = [inner.get("metadata"), inner.get("tags"), data.get("metadata")]
    tagged = [e.get("mailgate_send_id") or e.get("send_id") for e in extras if isinstance(e, dict)]
    pending = _text(
        data.get("pending_id"),
        inner.get("pending_id"),
        inner.get("email_id"),
        data.get("email_id"),
        data.get("message_id"),
    )
    send_id = _text(
        data.get("workflow_id"), data.get("send_id"), inner.get("workflow_id"), inner.get("send_id"), *tagged, send_id
    )
    if send_id is None and pending is not None and _SEND_ID.fullmatch(pending):
        send_id = pending
    if send_id is None:
        if pending is not None:
            raise UnknownSend(pending, _text(data.get("mailbox_id"), inner.get("mailbox_id"), data.get("mailbox")))
        raise InvalidInput("the event names no send (workflow_id, send_id, or pending_id/email_id)")
    approver = _text(
        data.get("approver_email"),
        inner.get("decided_by"),
        inner.get("approved_by"),
        data.get("decided_by"),
        data.get("approved_by"),
        data.get("approver"),
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


async def _tagged_send(app: Mailgate, email_id: str, mailbox: str | None) -> str | None:
    """The send whose MultiMail email this is, by the tag mailgate put on it (asked of MultiMail)."""
    for provider in app.providers.all():
        if not isinstance(provider, MultiMailProvider):
            continue
        if mailbox and mailbox.lower() not in (provider.config.mailbox_id.lower(), provider.config.address.lower()):
            continue
        with contextlib.suppress(EmailNotFound, DeliveryError):
            send_id = await provider.send_id_of(email_id)
            if send_id and _SEND_ID.fullmatch(send_id):
                return send_id
    return None


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
        try:
            # The rule of every front door: the signer names the approver, but neither the requester
            # nor the owner of the agent that asked may decide (refused like a non-approver).
            refused = await requester_refusal(app, decision.approver, await _requester(app, event.send_id))
        except MailgateError as exc:
            return _error(exc.http_status, str(exc))
        if refused is not None:
            return _error(Forbidden.http_status, f"{refused}; nothing was changed")
        return await _decide(app, event.send_id, decision, trash=True)

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
            data = _json_object(body)
            try:
                found = multimail_decision(data, body)
            except UnknownSend as unknown:
                # MultiMail's documented events name its email: its mailgate_send_id tag names the send.
                send_id = await _tagged_send(app, unknown.email_id, unknown.mailbox)
                if send_id is None:
                    raise
                found = multimail_decision(data, body, send_id)
        except MailgateError as exc:
            return _error(exc.http_status, str(exc))
        if found is None:
            return JSONResponse({"status": "ignored", "reason": "this event type decides nothing"})
        return await _decide(app, *found)

    return [
        Route("/webhooks/approvals", approvals, methods=["POST"]),
        Route("/webhooks/multimail", multimail, methods=["POST"]),
    ]
