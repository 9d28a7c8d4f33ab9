"""A local MultiMail for contract tests: the documented endpoints and shapes of MultiMail's API.

Follows MultiMail's OpenAPI document (v2.0.0) and its first-party MCP server where they agree:
idempotency keys per mailbox for 24 hours, limits (list ``limit`` 1..100, markdown up to 262,144
characters), 409 for the same reply to the same email within 60 seconds, ``approved_at`` and
``approved_by`` on a decided email, attachments inline as base64 under 50 KB and as a presigned
URL above (which refuses our API key, as a storage service's presigned URL does). Every request
and answer on ``/v1`` is checked against ``multimail_openapi.py``; what does not fit is kept in
``Fake.violations`` and fails the test. Where the docs are silent, it does what docs/providers.md's
"MultiMail: verified and assumed" lists (always 202 ``pending_scan`` on send; webhook bodies with
``event_type``, ``mailbox``, ``message_id``, ``thread_id``, ``timestamp``, signed as
``X-MultiMail-Signature: <hex HMAC-SHA256 of the body>``). Routes under ``/_fake`` are test
controls, not MultiMail's API: a human deciding on MultiMail's hosted page, mail arriving,
failures on demand, the clock.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.support.peers import multimail_openapi
from tests.support.peers.app_thread import AppThread

INLINE_MAX = 50_000  # bytes; larger attachments are answered with a presigned URL
IDEMPOTENCY_TTL = 24 * 3600.0
DUPLICATE_REPLY_WINDOW = 60.0
SKEW = [0.0]  # seconds added to the fake's clock (a test moves MultiMail's time forward)


def _clock() -> float:
    return time.time() + SKEW[0]


def _now() -> str:
    return datetime.fromtimestamp(_clock(), UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Fake:
    keys: dict[str, set[str]] = field(default_factory=lambda: {"mm_live_sender": {"read", "send", "admin"}})
    mailboxes: dict[str, dict[str, Any]] = field(default_factory=dict)
    emails: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    recent_replies: dict[tuple[str, str], float] = field(default_factory=dict)  # (parent, markdown) -> when
    presigned: dict[str, bytes] = field(default_factory=dict)
    attachment_redirects: bool = False  # answer large attachments with a 302 instead of JSON
    approve_before_cancel: bool = False  # MultiMail's human approves just before a cancel arrives
    held_status: str = "pending_send_approval"  # what a gated send waits in (another: a status MultiMail adds)
    violations: list[str] = field(default_factory=list)  # requests or answers outside the document
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # webhook POSTs and their answers
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_id(self, prefix: str) -> str:
        # Sortable like ULIDs: later ids compare greater (since_id relies on it).
        return f"{prefix}_{next(self.counter):08d}"

    def add_mailbox(self, address: str, mode: str = "gated_send") -> str:
        box_id = self.new_id("mb")
        self.mailboxes[box_id] = {
            "id": box_id,
            "tenant_id": "tn_1",
            "address": address,
            "display_name": None,
            "oversight_mode": mode,
            "created_at": int(time.time() * 1000),
            "is_active": 1,
        }
        return box_id

    def add_email(self, box_id: str, direction: str, **fields: Any) -> dict[str, Any]:
        email_id = self.new_id("em")
        email = {
            "id": email_id,
            "mailbox_id": box_id,
            "from": fields.pop("from_", "x@example.org"),
            "to": [],
            "cc": [],
            "bcc": [],
            "subject": "",
            "markdown": "",
            "direction": direction,
            "status": "unread",
            "thread_id": None,
            "received_at": _now(),
            "has_attachments": False,
            "attachments": [],
            "files": {},
            "delivered_at": None,
            "bounced_at": None,
            "approved_at": None,
            "approved_by": None,
            "spam_score": None,
            "spam_verdict": None,
            "tags": {},
            **fields,
        }
        if (
            direction == "inbound"
            and "status" not in fields
            and self.mailboxes[box_id]["oversight_mode"] == "gated_all"
        ):
            email["status"] = "pending_inbound_approval"  # MultiMail's gated_all: its human lets it in
        email["thread_id"] = email["thread_id"] or self.new_id("th")
        email["has_attachments"] = bool(email["attachments"])
        self.emails[email_id] = email
        return email

    def summary(self, email: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "from", "to", "subject", "direction", "status", "received_at", "thread_id", "has_attachments")
        return {
            **{k: email[k] for k in keys},
            "spam_score": None,
            "spam_verdict": None,
            "delivered_at": email["delivered_at"],
            "bounced_at": None,
            "bounce_type": None,
        }

    def full(self, email: dict[str, Any]) -> dict[str, Any]:
        hidden = ("files", "mailbox_id", "bcc", "markdown_sent")
        return {k: v for k, v in email.items() if k not in hidden}

    def move_clock(self, seconds: float) -> None:
        SKEW[0] += seconds

    # --- webhooks ------------------------------------------------------------------------------

    def emit(self, event: str, email: dict[str, Any], **extra: Any) -> None:
        body = self.event_body(event, email, **extra)
        for hook in list(self.webhooks.values()):
            if event in hook["events"] and hook["mailbox_id"] in (None, email["mailbox_id"]):
                threading.Thread(target=self._post, args=(hook, body), daemon=True).start()

    def event_body(self, event: str, email: dict[str, Any], **extra: Any) -> bytes:
        # The fields MultiMail's webhook page lists: event_type, mailbox, message_id, thread_id,
        # timestamp, and event-specific ones. No tags: a receiver finds the send by asking MultiMail.
        box = self.mailboxes[email["mailbox_id"]]
        payload = {
            "event_type": event,
            "timestamp": _now(),
            "mailbox": box["address"],
            "mailbox_id": email["mailbox_id"],
            "message_id": email["id"],
            "thread_id": email["thread_id"],
            "from": email["from"],
            "subject": email["subject"],
            **extra,
        }
        return json.dumps(payload).encode()

    @staticmethod
    def sign(secret: str, body: bytes) -> str:
        """X-MultiMail-Signature: the HMAC-SHA256 of the raw body with the signing secret, in hex."""
        return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    def _post(self, hook: dict[str, Any], body: bytes) -> None:
        signature = self.sign(hook["signing_secret"], body)
        headers = {"Content-Type": "application/json", "X-MultiMail-Signature": signature}
        for attempt in range(4):  # the first try and up to 3 retries with backoff
            try:
                status = httpx.post(hook["url"], content=body, headers=headers, timeout=5).status_code
            except httpx.HTTPError:
                status = 0
            with self.lock:
                self.deliveries.append({"url": hook["url"], "body": body, "status": status, "attempt": attempt})
            if 200 <= status < 300:
                return
            time.sleep(0.2 * 2**attempt)

    # --- decisions (MultiMail's human) ----------------------------------------------------------

    def decide(self, email_id: str, action: str, by: str = "ops@example.com") -> dict[str, Any]:
        """MultiMail's human decides. An approved send goes out at once; ``delivered_at`` comes
        later, with the delivery report (``deliver``)."""
        email = self.emails[email_id]
        if email["status"] not in ("pending_send_approval", "pending_inbound_approval"):
            raise ValueError("not pending")
        inbound = email["status"] == "pending_inbound_approval"
        if action == "approve":
            email.update(status="unread" if inbound else "read", approved_at=_now(), approved_by=by)
            self.emit("oversight.approved", email, decided_by=by)
            return {"status": "approved" if inbound else "approved_and_sent", "postmark_message_id": f"pm-{email_id}"}
        email.update(status="rejected")
        self.emit("oversight.rejected", email, decided_by=by)
        return {"status": "rejected"}

    def deliver(self, email_id: str) -> None:
        self.emails[email_id]["delivered_at"] = _now()
        self.emit("message.delivered", self.emails[email_id])


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class ContractCheck:
    """Checks every ``/v1`` request and answer against MultiMail's document (both directions)."""

    def __init__(self, app: ASGIApp, fake: Fake) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        raw_path = scope["raw_path"].decode("ascii", "replace")
        method = scope["method"]
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        query = [
            (unquote(k), unquote(v))
            for k, _, v in (p.partition("=") for p in scope["query_string"].decode().split("&") if p)
        ]
        self.fake.violations += [
            f"request: {p}" for p in multimail_openapi.request_problems(method, raw_path, query, body)
        ]
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}

        status = 0
        answer: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay, capture)
        try:
            shown = json.loads(b"".join(answer)) if answer and b"".join(answer) else None
        except ValueError:
            shown = None
        self.fake.violations += [
            f"answer: {p}" for p in multimail_openapi.response_problems(method, raw_path, status, shown)
        ]


def build_app(fake: Fake) -> Starlette:
    async def guard(request: Request, scope: str) -> JSONResponse | None:
        if fake.fail_next:
            status = fake.fail_next.pop(0)
            if status == 429:
                return _error(429, "rate limited", **{"Retry-After": "1"})
            return _error(status, "induced failure")
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else request.headers.get("x-api-key", "")
        if key not in fake.keys:
            return _error(401, "invalid API key")
        if scope not in fake.keys[key]:
            return _error(403, f"this key lacks the {scope} scope")
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT", "PATCH"):
            with contextlib.suppress(ValueError):
                body = await request.json()
        fake.requests.append((request.method, request.url.path, body))
        return None

    def box(request: Request) -> dict[str, Any] | None:
        return fake.mailboxes.get(request.path_params["mb"])

    def email_of(request: Request) -> dict[str, Any] | None:
        email = fake.emails.get(request.path_params["eid"])
        return email if email and email["mailbox_id"] == request.path_params["mb"] else None

    async def list_mailboxes(request: Request) -> Response:
        return await guard(request, "read") or JSONResponse({"mailboxes": list(fake.mailboxes.values())})

    async def patch_mailbox(request: Request) -> Response:
        if denied := await guard(request, "admin"):
            return denied
        found = box(request)
        if found is None:
            return _error(404, "mailbox not found")
        body = fake.requests[-1][2]
        order = ["read_only", "gated_all", "gated_send", "monitored", "autonomous"]
        mode = body.get("oversight_mode")
        if mode is not None and (mode not in order or order.index(mode) > order.index(found["oversight_mode"])):
            return _error(403, "oversight_mode may only be made stricter here; upgrades need the operator's code")
        found.update({k: v for k, v in body.items() if k in ("oversight_mode", "display_name")})
        return JSONResponse({"status": "updated"})

    def accept(found: dict[str, Any], body: dict[str, Any], **fields: Any) -> Response:
        key = body.get("idempotency_key")
        if len(str(body.get("markdown", ""))) > 262_144:
            return _error(400, "markdown exceeds 262144 characters")
        seen = fake.idempotency.get((found["id"], key)) if key else None
        if seen and _clock() - seen[1] < IDEMPOTENCY_TTL:  # keys live for 24 hours
            return JSONResponse({"id": seen[0], "status": "already_sent", "idempotent": True})
        attachments = body.get("attachments") or []
        email = fake.add_email(
            found["id"],
            "outbound",
            from_=found["address"],
            to=fields.pop("to", body.get("to", [])),
            cc=body.get("cc") or [],
            bcc=body.get("bcc") or [],
            markdown=body["markdown"],
            status="pending_scan",
            attachments=[
                {"name": a["name"], "size": len(a["content_base64"]), "content_type": a.get("content_type")}
                for a in attachments
            ],
            files={a["name"]: a["content_base64"] for a in attachments},
            **fields,
        )
        if key:
            fake.idempotency[(found["id"], key)] = (email["id"], _clock())
        # The scan ends at once here (in MultiMail it is asynchronous).
        if found["oversight_mode"] in ("gated_send", "gated_all"):
            email["status"] = fake.held_status
            fake.emit("oversight.pending", email)
        else:
            email.update(status="read", delivered_at=_now())
            fake.emit("message.sent", email)
        return JSONResponse({"id": email["id"], "status": "pending_scan", "thread_id": email["thread_id"]}, 202)

    async def send(request: Request) -> Response:
        if denied := await guard(request, "send"):
            return denied
        found = box(request)
        if found is None:
            return _error(404, "mailbox not found")
        if found["oversight_mode"] == "read_only":
            return _error(403, "mailbox is read_only: request an upgrade to send")
        body = fake.requests[-1][2]
        if not body.get("to") or not body.get("subject") or "markdown" not in body:
            return _error(400, "to, subject and markdown are required")
        return accept(found, body, subject=body["subject"])

    async def reply(request: Request) -> Response:
        if denied := await guard(request, "send"):
            return denied
        found, parent = box(request), email_of(request)
        if found is None or parent is None:
            return _error(404, "email not found")
        if found["oversight_mode"] == "read_only":
            return _error(403, "mailbox is read_only")
        body = fake.requests[-1][2]
        if "markdown" not in body:
            return _error(400, "markdown is required")
        key = body.get("idempotency_key")
        seen = fake.idempotency.get((found["id"], key)) if key else None
        if not (seen and _clock() - seen[1] < IDEMPOTENCY_TTL):
            last = fake.recent_replies.get((parent["id"], body["markdown"]))
            if last is not None and _clock() - last < DUPLICATE_REPLY_WINDOW:
                return _error(409, "duplicate reply: the same content was sent to this email within 60 seconds")
            fake.recent_replies[(parent["id"], body["markdown"])] = _clock()
        subject = parent["subject"] if parent["subject"].lower().startswith("re:") else f"Re: {parent['subject']}"
        return accept(found, body, subject=subject, to=[parent["from"]], thread_id=parent["thread_id"])

    async def list_emails(request: Request) -> Response:
        if denied := await guard(request, "read"):
            return denied
        q = request.query_params
        items = [e for e in fake.emails.values() if e["mailbox_id"] == request.path_params["mb"]]
        if q.get("direction"):
            items = [e for e in items if e["direction"] == q["direction"]]
        if q.get("status"):
            items = [e for e in items if e["status"] == q["status"]]
        if q.get("since_id"):
            items = [e for e in items if e["id"] > q["since_id"]]
        if q.get("sender"):
            items = [e for e in items if q["sender"].lower() in e["from"].lower()]
        if q.get("subject_contains"):
            items = [e for e in items if q["subject_contains"].lower() in e["subject"].lower()]
        if q.get("cursor"):
            items = [e for e in items if e["id"] < q["cursor"]]
        items.sort(key=lambda e: e["id"], reverse=True)
        limit = int(q.get("limit", 20))
        if not 1 <= limit <= 100:
            return _error(400, "limit must be between 1 and 100")
        page = items[:limit]
        cursor = page[-1]["id"] if len(items) > limit else None
        return JSONResponse({"emails": [fake.summary(e) for e in page], "cursor": cursor})

    async def get_email(request: Request) -> Response:
        if denied := await guard(request, "read"):
            return denied
        email = email_of(request)
        if email is None:
            return _error(404, "email not found")
        shown = fake.full(email)
        if email["status"] == "unread":
            email["status"] = "read"  # documented: reading marks an unread email read
        return JSONResponse(shown)

    async def cancel(request: Request) -> Response:
        if denied := await guard(request, "send"):
            return denied
        email = email_of(request)
        if email is None:
            return _error(404, "email not found")
        if fake.approve_before_cancel and email["status"] == "pending_send_approval":
            fake.decide(email["id"], "approve")  # the human's approval lands just before the cancel
        if email["status"] in (
            "pending_scan",
            "pending_send_approval",
            "pending_inbound_approval",
            "scheduled",
            "cancelled",
        ):
            email["status"] = "cancelled"
            return JSONResponse({"id": email["id"], "status": "cancelled"})
        return _error(409, f"email is {email['status']}: it can no longer be cancelled")

    async def thread(request: Request) -> Response:
        if denied := await guard(request, "read"):
            return denied
        items = [
            e
            for e in fake.emails.values()
            if e["mailbox_id"] == request.path_params["mb"] and e["thread_id"] == request.path_params["tid"]
        ]
        if not items:
            return _error(404, "thread not found")
        items.sort(key=lambda e: e["id"])
        keys = ("id", "from", "to", "subject", "direction", "status", "received_at", "has_attachments", "delivered_at")
        return JSONResponse(
            {
                "thread_id": request.path_params["tid"],
                "message_count": len(items),
                "participants": sorted({e["from"] for e in items}),
                "last_activity": items[-1]["received_at"],
                "has_unanswered_inbound": items[-1]["direction"] == "inbound",
                "emails": [{**{k: e[k] for k in keys}, "bounced_at": None} for e in items],
            }
        )

    async def attachment(request: Request) -> Response:
        if denied := await guard(request, "read"):
            return denied
        email = fake.emails.get(request.path_params["eid"])
        # The name is one percent-encoded path segment: it may itself hold "/", "#", "?" or "%".
        segments = request.scope["raw_path"].decode("ascii").split("/")
        name = unquote(segments[-1]) if len(segments) == 8 else None
        if email is None or email["mailbox_id"] != request.path_params["mb"] or name not in email["files"]:
            return _error(404, "attachment not found")
        content = base64.b64decode(email["files"][name])
        meta = {"filename": name, "content_type": "application/octet-stream", "size_bytes": len(content)}
        if len(content) < INLINE_MAX:
            return JSONResponse({**meta, "content_base64": email["files"][name]})
        token = hashlib.sha256(f"{email['id']}/{name}/{_clock()}".encode()).hexdigest()[:32]
        fake.presigned[token] = content
        url = f"{request.base_url}_fake/presigned/{token}?X-Amz-Expires=3600"
        if fake.attachment_redirects:
            return Response(status_code=302, headers={"Location": url})
        return JSONResponse({**meta, "url": url, "expires_in": 3600})

    async def presigned(request: Request) -> Response:
        # A presigned URL carries its own authority; like S3, it refuses a request with another.
        if "authorization" in request.headers:
            return _error(400, "only one auth mechanism allowed")
        content = fake.presigned.get(request.path_params["token"])
        if content is None:
            return _error(403, "expired or unknown")
        return Response(content, media_type="application/octet-stream")

    async def tags(request: Request) -> Response:
        if denied := await guard(request, "read" if request.method == "GET" else "send"):
            return denied
        email = email_of(request)
        if email is None:
            return _error(404, "email not found")
        if request.method == "PUT":
            email["tags"] = {str(k): str(v) for k, v in (fake.requests[-1][2].get("tags") or {}).items()}
        return JSONResponse({"tags": email["tags"]})

    async def delete_tag(request: Request) -> Response:
        if denied := await guard(request, "send"):
            return denied
        email = email_of(request)
        if email is None:
            return _error(404, "email not found")
        # The key is one percent-encoded path segment: it may itself hold "/".
        key = unquote(request.scope["raw_path"].decode("ascii").split("/")[-1])
        return JSONResponse({"deleted": email["tags"].pop(key, None) is not None})

    async def pending(request: Request) -> Response:
        if denied := await guard(request, "oversight"):
            return denied
        keys = ("id", "mailbox_id", "direction", "from", "to", "subject", "status", "received_at")
        items = [
            e for e in fake.emails.values() if e["status"] in ("pending_send_approval", "pending_inbound_approval")
        ]
        return JSONResponse({"emails": [{**{k: e[k] for k in keys}, "body_markdown": e["markdown"]} for e in items]})

    async def webhooks(request: Request) -> Response:
        if denied := await guard(request, "admin"):
            return denied
        if request.method == "GET":
            listed = [{k: v for k, v in h.items() if k != "signing_secret"} for h in fake.webhooks.values()]
            return JSONResponse({"subscriptions": listed})
        body = fake.requests[-1][2]
        if not body.get("url") or not body.get("events"):
            return _error(400, "url and events are required")
        hook_id = fake.new_id("wh")
        fake.webhooks[hook_id] = {
            "id": hook_id,
            "url": body["url"],
            "events": list(body["events"]),
            "mailbox_id": body.get("mailbox_id"),
            "signing_secret": "whsec_" + hashlib.sha256(hook_id.encode()).hexdigest()[:32],
            "created_at": _now(),
        }
        return JSONResponse(fake.webhooks[hook_id], 201)

    # --- test controls (not MultiMail's API) ---------------------------------------------------

    async def control_decide(request: Request) -> Response:
        body = await request.json()
        try:
            return JSONResponse(fake.decide(body["email_id"], body["action"], body.get("by", "ops@example.com")))
        except (KeyError, ValueError) as exc:
            return _error(409, str(exc))

    async def control_inbound(request: Request) -> Response:
        body = await request.json()
        email = fake.add_email(body.pop("mailbox_id"), "inbound", **body)
        fake.emit("message.received", email)
        return JSONResponse(fake.full(email))

    return Starlette(
        routes=[
            Route("/v1/mailboxes", list_mailboxes),
            Route("/v1/mailboxes/{mb}", patch_mailbox, methods=["PATCH"]),
            Route("/v1/mailboxes/{mb}/send", send, methods=["POST"]),
            Route("/v1/mailboxes/{mb}/reply/{eid}", reply, methods=["POST"]),
            Route("/v1/mailboxes/{mb}/emails", list_emails),
            Route("/v1/mailboxes/{mb}/emails/{eid}", get_email),
            Route("/v1/mailboxes/{mb}/emails/{eid}/cancel", cancel, methods=["POST"]),
            Route("/v1/mailboxes/{mb}/emails/{eid}/attachments/{name:path}", attachment),
            Route("/v1/mailboxes/{mb}/emails/{eid}/tags", tags, methods=["GET", "PUT"]),
            Route("/v1/mailboxes/{mb}/emails/{eid}/tags/{key:path}", delete_tag, methods=["DELETE"]),
            Route("/v1/mailboxes/{mb}/threads/{tid}", thread),
            Route("/v1/oversight/pending", pending),
            Route("/v1/webhooks", webhooks, methods=["GET", "POST"]),
            Route("/_fake/decide", control_decide, methods=["POST"]),
            Route("/_fake/inbound", control_inbound, methods=["POST"]),
            Route("/_fake/presigned/{token}", presigned),
        ]
    )


class FakeServer(AppThread):
    """The fake on 127.0.0.1 in a thread of its own, for as long as a test needs it."""

    def __init__(self) -> None:
        self.fake = Fake()
        super().__init__(ContractCheck(build_app(self.fake), self.fake))

    def stop(self) -> None:
        super().stop()
        SKEW[0] = 0.0
