"""A local Slack for contract tests: the Web API methods mailgate calls, and interactions Slack sends.

Web API per Slack's published contract: POST with ``Authorization: Bearer xoxb-...``, JSON body;
HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` (``not_authed``,
``invalid_auth``, ``channel_not_found``, ``message_not_found``, ``user_not_found``,
``invalid_arguments``). Every call is recorded. ``interaction()`` builds a request as Slack posts
it to an app's interactivity URL: form-encoded ``payload=<JSON>``, signed with ``v0``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.peers.app_thread import AppThread

BOT_TOKEN = "xoxb-test-0000-bot"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0MAILGATE"


@dataclass
class SlackFake:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: set[str] = field(default_factory=lambda: {CHANNEL})
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_next: list[str] = field(default_factory=list)  # Slack error codes to answer with, in turn
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_user(self, user_id: str, email: str, *, confirmed: bool = True) -> None:
        self.users[user_id] = {
            "id": user_id,
            "name": email.split("@")[0],
            "deleted": False,
            "is_bot": False,
            "is_email_confirmed": confirmed,
            "profile": {"email": email, "real_name": email.split("@")[0]},
        }

    def called(self, method: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for name, body in self.calls if name == method]

    def message(self, ts: str) -> dict[str, Any]:
        return next(m for (_, t), m in self.messages.items() if t == ts)


def _answer(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"ok": True, **data})


def _error(error: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": error})


def build_app(fake: SlackFake) -> Starlette:
    async def method(request: Request) -> Response:
        name = request.path_params["method"]
        auth = request.headers.get("authorization", "")
        if not auth:
            return _error("not_authed")
        if auth != f"Bearer {BOT_TOKEN}":
            return _error("invalid_auth")
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _error("invalid_json")
        with fake.lock:
            fake.calls.append((name, body))
            if fake.fail_next:
                return _error(fake.fail_next.pop(0))
            return handle(name, body)

    def handle(name: str, body: dict[str, Any]) -> Response:
        if name in ("chat.postMessage", "chat.postEphemeral"):
            channel = body.get("channel")
            if channel not in fake.channels:
                return _error("channel_not_found")
            if not body.get("text") and not body.get("blocks"):
                return _error("no_text")
            if name == "chat.postEphemeral":
                if body.get("user") not in fake.users:
                    return _error("user_not_found")
                return _answer({"message_ts": f"{time.time():.6f}"})
            ts = f"{int(time.time())}.{next(fake.counter):06d}"
            fake.messages[(channel, ts)] = {"text": body.get("text"), "blocks": body.get("blocks", [])}
            return _answer({"channel": channel, "ts": ts, "message": fake.messages[(channel, ts)]})
        if name == "chat.update":
            key = (body.get("channel"), body.get("ts"))
            if key not in fake.messages:
                return _error("message_not_found")
            fake.messages[key] = {"text": body.get("text"), "blocks": body.get("blocks", [])}
            return _answer({"channel": key[0], "ts": key[1], "text": body.get("text")})
        if name == "views.open":
            view = body.get("view")
            if not body.get("trigger_id") or not isinstance(view, dict):
                return _error("invalid_arguments")
            return _answer({"view": {"id": f"V{next(fake.counter):08d}", **view}})
        if name == "users.info":
            user = fake.users.get(str(body.get("user")))
            if user is None:
                return _error("user_not_found")
            return _answer({"user": user})
        return _error("unknown_method")

    return Starlette(routes=[Route("/api/{method}", method, methods=["POST"])])


def signed(
    payload: dict[str, Any], *, secret: str = SIGNING_SECRET, at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """An interaction as Slack posts it: form-encoded ``payload=``, with its v0 signature headers."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time() if at is None else at))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": signature,
    }
    return body, headers


def block_action(user_id: str, action_id: str, send_id: str, ts: str, *, channel: str = CHANNEL) -> dict[str, Any]:
    """A block_actions payload: a click on one of the message's buttons."""
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": "T0TEAM"},
        "api_app_id": "A0MAILGATE",
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"{time.time():.0f}.trigger.{user_id}",
        "team": {"id": "T0TEAM", "domain": "example"},
        "channel": {"id": channel, "name": "approvals"},
        "message": {"type": "message", "ts": ts},
        "response_url": "https://hooks.slack.com/actions/T0TEAM/1/abc",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "mailgate_decision",
                "value": send_id,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def reject_submission(user_id: str, view: dict[str, Any], reason: str) -> dict[str, Any]:
    """A view_submission payload: the reject modal sent with a reason."""
    return {
        "type": "view_submission",
        "team": {"id": "T0TEAM", "domain": "example"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": "T0TEAM"},
        "api_app_id": "A0MAILGATE",
        "trigger_id": f"{time.time():.0f}.trigger.{user_id}",
        "view": {
            **view,
            "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}},
        },
    }


class SlackServer(AppThread):
    """The fake on 127.0.0.1 in a thread of its own, for as long as a test needs it."""

    def __init__(self) -> None:
        self.fake = SlackFake()
        super().__init__(build_app(self.fake))

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"
