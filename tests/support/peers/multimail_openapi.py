"""The parts of MultiMail's OpenAPI document (v2.0.0) that mailgate uses, as JSON Schema.

Written here by hand from the document (``spec.json`` in MultiMail's CLI repository): per
endpoint, the query parameters, the request body and the documented status codes with their
bodies; OpenAPI's ``nullable`` is spelled as a ``null`` type. Both sides of the contract tests
are checked against it: the requests mailgate makes and the answers the local MultiMail
(``multimail_fake.py``) gives, so neither can drift from MultiMail's document unnoticed.

Where the document says nothing (the attachment endpoint's body; webhook payloads) nothing is
checked here, and docs/providers.md lists it as an assumption.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

STATUSES = [
    "unread",
    "read",
    "archived",
    "deleted",
    "pending_send_approval",
    "pending_inbound_approval",
    "rejected",
    "cancelled",
    "send_failed",
    "scheduled",
    "spam_flagged",
    "spam_quarantined",
]
STR = {"type": "string"}
NSTR = {"type": ["string", "null"]}
STRS = {"type": "array", "items": STR}
EMAILS = {"type": "array", "items": {"type": "string", "format": "email"}}
TAG_MAP = {"type": "object", "additionalProperties": STR}
DIRECTION = {"type": "string", "enum": ["inbound", "outbound"]}
FROM: dict[str, Any] = {"from": STR}  # a property named like a Python keyword


def obj(required: tuple[str, ...] = (), closed: bool = False, **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


MAILBOX = obj(
    id=STR,
    tenant_id=STR,
    address=STR,
    display_name=NSTR,
    oversight_mode=STR,
    auto_cc=NSTR,
    auto_bcc=NSTR,
    forward_inbound={"type": "integer"},
    webhook_url=NSTR,
    oversight_webhook_url=NSTR,
    signature_block=NSTR,
    created_at={"type": "integer"},
    is_active={"type": "integer"},
)
SUMMARY = obj(
    id=STR,
    to=STRS,
    subject=STR,
    direction=DIRECTION,
    status={"type": "string", "enum": STATUSES},
    spam_score={"type": ["integer", "null"]},
    spam_verdict={"enum": ["clean", "flagged", "quarantined", None]},
    received_at=STR,
    thread_id=NSTR,
    has_attachments={"type": "boolean"},
    delivered_at=NSTR,
    bounced_at=NSTR,
    bounce_type=NSTR,
    **FROM,
)
EMAIL = obj(
    id=STR,
    to=STRS,
    cc=STRS,
    subject=STR,
    received_at=STR,
    thread_id=NSTR,
    markdown=STR,
    status={"type": "string", "enum": STATUSES},
    has_attachments={"type": "boolean"},
    attachments={
        "type": "array",
        "items": obj(name=STR, size={"type": "integer"}, content_type=STR),
    },
    delivered_at=NSTR,
    bounced_at=NSTR,
    bounce_type=NSTR,
    approved_at=NSTR,
    approved_by=NSTR,
    spam_score={"type": ["integer", "null"]},
    spam_verdict={"enum": ["clean", "flagged", "quarantined", None]},
    tags=TAG_MAP,
    **FROM,
)
THREAD = obj(
    thread_id=STR,
    message_count={"type": "integer"},
    participants=STRS,
    last_activity=STR,
    has_unanswered_inbound={"type": "boolean"},
    emails={
        "type": "array",
        "items": obj(
            id=STR,
            to=STRS,
            subject=STR,
            direction=DIRECTION,
            status=STR,
            received_at=STR,
            has_attachments={"type": "boolean"},
            delivered_at=NSTR,
            bounced_at=NSTR,
            **FROM,
        ),
    },
)
ATTACHMENT_IN = obj(("name", "content_base64", "content_type"), name=STR, content_base64=STR, content_type=STR)
MARKDOWN = {"type": "string", "maxLength": 262_144}
REPLY = obj(
    ("markdown",),
    True,
    markdown=MARKDOWN,
    cc=EMAILS,
    bcc=EMAILS,
    attachments={"type": "array", "items": ATTACHMENT_IN},
    idempotency_key=STR,
)
SEND = obj(
    ("to", "subject", "markdown"),
    True,
    to={**EMAILS, "maxItems": 50},
    cc=EMAILS,
    bcc=EMAILS,
    subject={"type": "string", "maxLength": 998},
    markdown=MARKDOWN,
    attachments={"type": "array", "items": ATTACHMENT_IN},
    idempotency_key=STR,
    send_at=STR,
    gate_timing={"type": "string", "enum": ["gate_first", "schedule_first"]},
)
DUPLICATE = obj(id=STR, status=STR, idempotent={"type": "boolean"})
QUEUED = obj(id=STR, status=STR, thread_id=STR, message=STR)
ID = {"type": "string"}
LIST_QUERY: dict[str, dict[str, Any]] = {
    "status": {"type": "string", "enum": STATUSES},
    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
    "cursor": STR,
    "sender": STR,
    "subject_contains": STR,
    "date_after": STR,
    "date_before": STR,
    "direction": DIRECTION,
    "has_attachments": {"type": "string", "enum": ["true", "false"]},
    "since_id": STR,
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str  # the document's path, {name} for a path parameter
    responses: dict[int, dict[str, Any] | None]  # documented status codes (None: no body documented)
    body: dict[str, Any] | None = None
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw_body: bool = False  # the document gives no body shape (the attachment endpoint)

    def matches(self, method: str, raw_path: str) -> bool:
        if method != self.method:
            return False
        pattern = re.sub(r"\{[^/]+\}", "[^/]+", self.template)
        return re.fullmatch(pattern, raw_path) is not None


ENDPOINTS = [
    Endpoint("GET", "/v1/mailboxes", {200: obj(mailboxes={"type": "array", "items": MAILBOX})}),
    Endpoint(
        "GET",
        "/v1/mailboxes/{mailboxId}/emails",
        {200: obj(emails={"type": "array", "items": SUMMARY}, cursor=NSTR)},
        query=LIST_QUERY,
    ),
    Endpoint("GET", "/v1/mailboxes/{mailboxId}/emails/{emailId}", {200: EMAIL, 404: None}),
    Endpoint("GET", "/v1/mailboxes/{mailboxId}/emails/{emailId}/attachments/{filename}", {}, raw_body=True),
    Endpoint(
        "POST",
        "/v1/mailboxes/{mailboxId}/emails/{emailId}/cancel",
        {200: obj(id=STR, status=STR), 404: None, 409: None},
    ),
    Endpoint(
        "PUT",
        "/v1/mailboxes/{mailboxId}/emails/{emailId}/tags",
        {200: obj(tags=TAG_MAP)},
        obj(("tags",), True, tags=TAG_MAP),
    ),
    Endpoint("GET", "/v1/mailboxes/{mailboxId}/emails/{emailId}/tags", {200: obj(tags=TAG_MAP)}),
    Endpoint(
        "DELETE",
        "/v1/mailboxes/{mailboxId}/emails/{emailId}/tags/{key}",
        {200: obj(deleted={"type": "boolean"})},
    ),
    Endpoint("GET", "/v1/mailboxes/{mailboxId}/threads/{threadId}", {200: THREAD, 404: None}),
    Endpoint(
        "POST",
        "/v1/mailboxes/{mailboxId}/send",
        {200: DUPLICATE, 202: QUEUED, 400: None, 403: None, 429: None},
        SEND,
    ),
    Endpoint(
        "POST",
        "/v1/mailboxes/{mailboxId}/reply/{emailId}",
        {200: DUPLICATE, 202: obj(id=STR, status=STR, thread_id=STR), 403: None, 409: None},
        REPLY,
    ),
    Endpoint(
        "GET",
        "/v1/oversight/pending",
        {
            200: obj(
                emails={
                    "type": "array",
                    "items": obj(
                        id=STR,
                        mailbox_id=STR,
                        direction=DIRECTION,
                        to=STRS,
                        subject=STR,
                        body_markdown=STR,
                        status=STR,
                        received_at=STR,
                        **FROM,
                    ),
                }
            )
        },
    ),
]
# Answers any endpoint may give (authentication, scopes, rate limits, MultiMail's own failures).
COMMON_STATUSES = {401, 403, 404, 429, 500, 502, 503}


def endpoint(method: str, raw_path: str) -> Endpoint | None:
    return next((e for e in ENDPOINTS if e.matches(method, raw_path)), None)


def _problems(schema: dict[str, Any], value: Any, where: str) -> list[str]:
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [
        f"{where}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(value)
    ]


def request_problems(method: str, raw_path: str, query: list[tuple[str, str]], body: Any) -> list[str]:
    """What in this request (mailgate's side) the document does not allow."""
    found = endpoint(method, raw_path)
    if found is None:
        return [f"{method} {raw_path}: not an endpoint mailgate uses in MultiMail's document"]
    where = f"{method} {found.template}"
    problems = []
    for name, value in query:
        schema = found.query.get(name)
        if schema is None:
            problems.append(f"{where}: query parameter {name!r} is not documented")
            continue
        typed: Any = int(value) if schema.get("type") == "integer" and value.lstrip("-").isdigit() else value
        problems += _problems(schema, typed, f"{where} ?{name}")
    if found.body is not None:
        problems += _problems(found.body, body, f"{where} body")
    elif body not in (None, {}, b""):
        problems.append(f"{where}: the document gives this endpoint no request body")
    return problems


def response_problems(method: str, raw_path: str, status: int, body: Any) -> list[str]:
    """What in this answer (the contract server's side) the document does not say."""
    found = endpoint(method, raw_path)
    if found is None or found.raw_body:
        return []
    where = f"{method} {found.template} -> {status}"
    if status not in found.responses and status not in COMMON_STATUSES:
        return [f"{where}: status {status} is not documented for this endpoint"]
    schema = found.responses.get(status)
    if schema is None:
        return []
    return _problems(schema, body, where)
