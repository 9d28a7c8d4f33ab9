"""A local MultiMail for contract tests: the documented endpoints and shapes of MultiMail's API.

Follows MultiMail's OpenAPI document (v2.0.0) and its first-party MCP server where they agree;
where the docs are silent, it does what the README's "MultiMail: what was assumed" lists (always
202 ``pending_scan`` on send, idempotency keys per mailbox for 24 h, ``delivered_at`` marks a
sent email, webhook bodies ``{"event", "timestamp", "data": {...}}`` signed as
``X-MultiMail-Signature: sha256=<hex>``). Routes under ``/_fake`` are test controls, not MultiMail's
API: a human deciding on MultiMail's hosted page, mail arriving, failures on demand.
"""

from __future__ import annotations

import asyncio
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

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.ports import free_port


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Fake:
    keys: dict[str, set[str]] = field(default_factory=lambda: {"mm_live_sender": {"read", "send", "admin"}})
    mailboxes: dict[str, dict[str, Any]] = field(default_factory=dict)
    emails: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], str] = field(default_factory=dict)
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
            "tags": {},
            **fields,
        }
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
        hidden = ("files", "mailbox_id", "bcc")
        return {k: v for k, v in email.items() if k not in hidden}

    # --- webhooks ------------------------------------------------------------------------------

    def emit(self, event: str, email: dict[str, Any], **extra: Any) -> None:
        data = {
            "email_id": email["id"],
            "mailbox_id": email["mailbox_id"],
            "thread_id": email["thread_id"],
            "direction": email["direction"],
            "status": email["status"],
            "tags": dict(email["tags"]),
            **extra,
        }
        body = json.dumps({"event": event, "timestamp": _now(), "data": data}).encode()
        for hook in list(self.webhooks.values()):
            if event in hook["events"] and hook["mailbox_id"] in (None, email["mailbox_id"]):
                threading.Thread(target=self._post, args=(hook, body), daemon=True).start()

    def _post(self, hook: dict[str, Any], body: bytes) -> None:
        signature = hmac.new(hook["signing_secret"].encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-MultiMail-Signature": f"sha256={signature}"}
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
        email = self.emails[email_id]
        if email["status"] != "pending_send_approval":
            raise ValueError("not pending")
        if action == "approve":
            email.update(status="read", delivered_at=_now(), approved_at=_now(), approved_by=by)
            self.emit("oversight.approved", email, decided_by=by)
            return {"status": "approved_and_sent", "postmark_message_id": f"pm-{email_id}"}
        email.update(status="rejected")
        self.emit("oversight.rejected", email, decided_by=by)
        return {"status": "rejected"}


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


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
        if key and (found["id"], key) in fake.idempotency:
            return JSONResponse(
                {"id": fake.idempotency[(found["id"], key)], "status": "already_sent", "idempotent": True}
            )
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
            fake.idempotency[(found["id"], key)] = email["id"]
        # The scan ends at once here (in MultiMail it is asynchronous).
        if found["oversight_mode"] in ("gated_send", "gated_all"):
            email["status"] = "pending_send_approval"
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
        limit = min(int(q.get("limit", 20)), 100)
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
        if email["status"] in ("pending_scan", "pending_send_approval", "scheduled", "cancelled"):
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
        email = email_of(request)
        name = request.path_params["name"]
        if email is None or name not in email["files"]:
            return _error(404, "attachment not found")
        return Response(base64.b64decode(email["files"][name]), media_type="application/octet-stream")

    async def tags(request: Request) -> Response:
        if denied := await guard(request, "read" if request.method == "GET" else "send"):
            return denied
        email = email_of(request)
        if email is None:
            return _error(404, "email not found")
        if request.method == "PUT":
            email["tags"] = {str(k): str(v) for k, v in (fake.requests[-1][2].get("tags") or {}).items()}
        return JSONResponse({"tags": email["tags"]})

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
            Route("/v1/mailboxes/{mb}/emails/{eid}/attachments/{name}", attachment),
            Route("/v1/mailboxes/{mb}/emails/{eid}/tags", tags, methods=["GET", "PUT"]),
            Route("/v1/mailboxes/{mb}/threads/{tid}", thread),
            Route("/v1/oversight/pending", pending),
            Route("/v1/webhooks", webhooks, methods=["GET", "POST"]),
            Route("/_fake/decide", control_decide, methods=["POST"]),
            Route("/_fake/inbound", control_inbound, methods=["POST"]),
        ]
    )


class FakeServer:
    """The fake on 127.0.0.1 in a thread of its own, for as long as a test needs it."""

    def __init__(self) -> None:
        self.fake = Fake()
        self.port = free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(build_app(self.fake), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5)


async def wait_for(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
