"""POST /webhooks/slack: button clicks and the reject modal from the Slack app's messages.

Each request is checked with Slack's signing scheme before anything is read (``v0=`` HMAC-SHA256
of ``v0:{timestamp}:{raw body}``, at most five minutes old, compared in constant time) and is
taken once: a replay of the same signed request within its five minutes changes nothing, and the
decision id (from the click or the modal) lets the send drop copies that arrive another way.

Who decides is the Slack user's verified email (``users.info``), who must be one of the
mailbox's approvers by the rule every front door uses (server/deciders.py); anyone else is told
so privately (``chat.postEphemeral``) and nothing
changes. A decision goes to the send as a signal, like the other webhooks, so it holds while
workers are down; the send then updates the Slack message itself. A bulk trash request's message
(workflows/trash_approval.py) is decided the same way, by the same rule.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.service import RPCError

from server.app import Mailgate
from server.deciders import refusal
from server.errors import MailgateError
from server.trash_approvals import is_trash_id, parse_trash_id
from server.validation import parse_send_id
from server.web.bodies import MIB, TooLarge, read_limited
from workflows.models import Decision
from workflows.slack_client.api import SlackApi, SlackError
from workflows.slack_client.message import (
    APPROVE,
    EDIT,
    REASON_ACTION,
    REASON_BLOCK,
    REJECT,
    REJECT_VIEW,
    reason_view,
    trash_reason_view,
)

log = logging.getLogger("mailgate.slack")
MAX_AGE = 300  # seconds, either way: Slack's own advice


class SignatureError(ValueError):
    pass


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, timestamp: str, signature: str, now: float) -> None:
    """Raise SignatureError unless Slack signed this body within the last five minutes."""
    if not timestamp.isdigit():
        raise SignatureError("X-Slack-Request-Timestamp is missing or not a number")
    if abs(now - int(timestamp)) > MAX_AGE:
        raise SignatureError("X-Slack-Request-Timestamp is more than five minutes away from now")
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.strip().encode()):
        raise SignatureError("X-Slack-Signature is missing or does not match the body")


class Seen:
    """Signatures taken in the last ``MAX_AGE`` seconds: older ones fail the timestamp check anyway."""

    def __init__(self, limit: int = 10_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._limit = limit

    def first(self, signature: str, now: float) -> bool:
        while self._seen and (next(iter(self._seen.values())) < now - 2 * MAX_AGE or len(self._seen) > self._limit):
            self._seen.popitem(last=False)
        if signature in self._seen:
            return False
        self._seen[signature] = now
        return True


def _payload(body: bytes) -> dict[str, Any]:
    form = parse_qs(body.decode("utf-8", "replace"))
    raw = form.get("payload")
    if not raw:
        raise ValueError("the body has no payload field")
    data = json.loads(raw[0])
    if not isinstance(data, dict):
        raise ValueError("the payload is not a JSON object")
    return data


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class SlackDecisions:
    def __init__(self, app: Mailgate, api: SlackApi) -> None:
        self._app = app
        self._api = api

    async def verified_email(self, user_id: str) -> str | None:
        """The Slack user's email, only if Slack verified it and the user is a live human."""
        try:
            answer = await self._api.call("users.info", {"user": user_id})
        except SlackError as err:
            log.warning("users.info for %s failed: %s", user_id, err)
            return None
        user = answer.get("user")
        if not isinstance(user, dict) or user.get("deleted") or user.get("is_bot"):
            return None
        if user.get("is_email_confirmed") is not True:
            return None
        profile = user.get("profile")
        email = _str(profile.get("email")) if isinstance(profile, dict) else ""
        return email.strip() or None

    async def mailbox_of(self, send_id: str) -> str:
        """The send's (or trash request's) mailbox, from its memo (no worker needed)."""
        return _str((await self._memo(send_id)).get("mailbox"))

    async def reason_view(self, send_id: str) -> dict[str, Any]:
        """The reject modal, saying what is rejected: an email (its subject), or a trash request
        (its mailbox and how many emails), from the memo (no worker needed)."""
        memo = await self._memo(send_id)
        if is_trash_id(send_id):
            count = memo.get("count")
            return trash_reason_view(send_id, _str(memo.get("mailbox")), count if isinstance(count, int) else 0)
        return reason_view(send_id, _str(memo.get("subject")))

    async def _memo(self, some_id: str) -> Mapping[str, Any]:
        checked = parse_trash_id(some_id) if is_trash_id(some_id) else parse_send_id(some_id)
        handle = self._app.sends.client.get_workflow_handle(checked)
        return await (await handle.describe()).memo()

    async def approver_problem(self, user_id: str, send_id: str) -> tuple[str | None, str]:
        """(refusal, approver email): a refusal when this Slack user may not decide this send."""
        email = await self.verified_email(user_id)
        if email is None:
            return "mailgate could not read a verified email for your Slack account, so it cannot tell who you are.", ""
        try:
            mailbox = await self.mailbox_of(send_id)
            refused = await refusal(self._app, email, mailbox, await self.requester(send_id))
        except (RPCError, MailgateError):
            return f"mailgate knows no {'trash request' if is_trash_id(send_id) else 'send'} {send_id}.", email
        if refused is not None:
            return f"Not you ({refused}): nothing was changed.", email
        return None, email

    async def requester(self, send_id: str) -> str | None:
        """Who asked for the send: from its memo (no worker needed), else from the send itself."""
        requester = (await self._memo(send_id)).get("requester")
        if isinstance(requester, str) or is_trash_id(send_id):
            return requester if isinstance(requester, str) else None
        try:  # a send started before its memo named the requester
            return (await self._app.sends.status(send_id)).requester
        except MailgateError:
            return None

    async def tell(self, payload: dict[str, Any], user_id: str, text: str) -> None:
        channel = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
        assert isinstance(channel, dict)
        if not _str(channel.get("id")):
            return
        try:
            await self._api.call("chat.postEphemeral", {"channel": channel["id"], "user": user_id, "text": text})
        except SlackError as err:
            log.warning("could not tell %s privately: %s", user_id, err)

    async def decide(self, send_id: str, decision: Decision) -> str | None:
        try:
            if is_trash_id(send_id):
                await self._app.trash.signal_decision(send_id, decision)
            else:
                await self._app.sends.signal_decision(send_id, decision)
        except MailgateError as exc:
            return str(exc)
        return None

    async def block_actions(self, payload: dict[str, Any]) -> Response:
        actions = payload.get("actions")
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        action_id = _str(action.get("action_id"))
        user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
        assert isinstance(user, dict)
        user_id = _str(user.get("id"))
        send_id = _str(action.get("value"))
        if action_id == EDIT or action_id not in (APPROVE, REJECT) or not user_id or not send_id:
            return Response(status_code=200)  # Edit is a link to the dashboard: Slack opens it
        problem, email = await self.approver_problem(user_id, send_id)
        if problem is not None:
            await self.tell(payload, user_id, problem)
            return Response(status_code=200)
        if action_id == REJECT:
            view = await self.reason_view(send_id)
            trigger = _str(payload.get("trigger_id"))
            try:
                await self._api.call("views.open", {"trigger_id": trigger, "view": view})
            except SlackError as err:
                await self.tell(payload, user_id, f"Could not ask for a reason ({err.error}); reject on the dashboard.")
            return Response(status_code=200)
        decision = Decision(
            decision="approve",
            approver=email,
            channel="slack",
            decision_id=f"slack:{user_id}:{_str(action.get('action_ts'))}",
        )
        refused = await self.decide(send_id, decision)
        if refused is not None:
            await self.tell(payload, user_id, f"Not approved: {refused}")
        return Response(status_code=200)

    async def view_submission(self, payload: dict[str, Any]) -> Response:
        view = payload.get("view") if isinstance(payload.get("view"), dict) else {}
        assert isinstance(view, dict)
        if _str(view.get("callback_id")) != REJECT_VIEW:
            return Response(status_code=200)
        user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
        assert isinstance(user, dict)
        user_id, send_id = _str(user.get("id")), _str(view.get("private_metadata"))
        try:
            reason = _str(view["state"]["values"][REASON_BLOCK][REASON_ACTION]["value"]).strip()
        except (KeyError, TypeError):
            reason = ""

        def error(text: str) -> Response:
            return JSONResponse({"response_action": "errors", "errors": {REASON_BLOCK: text[:150]}})

        if not reason:
            return error("Say why: the agent reads the reason.")
        problem, email = await self.approver_problem(user_id, send_id)
        if problem is not None:
            return error(problem)
        try:
            decision = Decision(
                decision="reject",
                approver=email,
                reason=reason[:2000],
                channel="slack",
                decision_id=f"slack:view:{_str(view.get('id'))}",
            )
        except ValidationError as exc:
            return error(str(exc))
        refused = await self.decide(send_id, decision)
        if refused is not None:
            return error(refused)
        return Response(status_code=200)


def routes(app: Mailgate) -> list[Route]:
    settings = app.settings
    seen = Seen()

    async def slack(request: Request) -> Response:
        secret, token = settings.slack_signing_secret, settings.slack_bot_token
        if secret is None or token is None:
            return JSONResponse(
                {"error": "this webhook is off: set MAILGATE_SLACK_BOT_TOKEN and MAILGATE_SLACK_SIGNING_SECRET"},
                status_code=503,
            )
        try:
            body = await read_limited(request, MIB)
        except TooLarge as exc:
            return JSONResponse({"error": str(exc)}, status_code=413)
        signature = request.headers.get("x-slack-signature", "")
        now = time.time()
        try:
            verify(
                secret.get_secret_value(), body, request.headers.get("x-slack-request-timestamp", ""), signature, now
            )
        except SignatureError as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        if not seen.first(signature, now):
            return Response(status_code=200)  # a replay: taken once already
        try:
            payload = _payload(body)
        except ValueError as exc:
            return JSONResponse({"error": f"not a Slack interaction: {exc}"}, status_code=400)
        handler = SlackDecisions(app, SlackApi(token.get_secret_value(), settings.slack_api_url))
        kind = _str(payload.get("type"))
        if kind == "block_actions":
            return await handler.block_actions(payload)
        if kind == "view_submission":
            return await handler.view_submission(payload)
        return Response(status_code=200)

    return [Route("/webhooks/slack", slack, methods=["POST"])]
