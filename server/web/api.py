"""The approver JSON API under /api/ (admin token only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.app import Mailgate
from server.audit import audit_log
from server.errors import InvalidInput, MailgateError
from server.mailboxes import PolicyChanges
from server.sends import check_person, parse_edits
from server.web.security import admin_role
from workflows.models import Decision, OversightMode, SendStatus

MAX_BODY = 1024 * 1024
M = TypeVar("M", bound=BaseModel)


class _TooLarge(Exception):
    pass


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EditsBody(Body):
    subject: str | None = None
    body: str | None = None
    to: list[str] | None = None
    cc: list[str] | None = None
    bcc: list[str] | None = None


class ApproveBody(Body):
    approver: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)
    edits: EditsBody | None = None


class RejectBody(Body):
    approver: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)


class HeldBody(Body):
    actor: str = Field(min_length=1, max_length=200)


class MailboxBody(Body):
    address: str
    display_name: str = ""
    mode: OversightMode | None = None


class ConfigureBody(PolicyChanges):
    actor: str = Field(min_length=1, max_length=200)


class ModeBody(Body):
    mode: OversightMode
    actor: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)


def dump(model: BaseModel | list[BaseModel]) -> Any:
    if isinstance(model, list):
        return [m.model_dump(mode="json") for m in model]
    return model.model_dump(mode="json")


async def read_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise _TooLarge
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(problems) from exc


Handler = Callable[[Request, Mailgate], Awaitable[Any]]


def endpoint(app: Mailgate, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        refusal = admin_role(request, app.secrets)
        if refusal is not None:
            return refusal
        length = request.headers.get("content-length")
        if length and length.isascii() and length.isdigit() and int(length) > MAX_BODY:
            return JSONResponse({"error": f"body over {MAX_BODY} bytes"}, status_code=413)
        try:
            return JSONResponse(await handler(request, app))
        except _TooLarge:
            return JSONResponse({"error": f"body over {MAX_BODY} bytes"}, status_code=413)
        except MailgateError as exc:
            return JSONResponse({"error": exc.at("api")}, status_code=exc.http_status)

    return run


def _status_filter(raw: str | None) -> SendStatus | None:
    if raw is None or raw == "pending":
        return "pending_approval"
    if raw == "all":
        return None
    allowed = SendStatus.__args__  # type: ignore[attr-defined]
    if raw not in allowed:
        raise InvalidInput(f"status must be pending, all or one of {', '.join(allowed)}")
    return raw  # type: ignore[return-value]


async def list_approvals(request: Request, app: Mailgate) -> Any:
    query = request.query_params
    limit = query.get("limit", "50")
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 500:
        raise InvalidInput("limit must be a number from 1 to 500")
    page = await app.sends.search(
        mailbox=query.get("mailbox") or None,
        status=_status_filter(query.get("status")),
        limit=int(limit),
        cursor=query.get("cursor") or None,
    )
    return {"approvals": dump(list(page.sends)), "next_cursor": page.next_cursor}


async def approve(request: Request, app: Mailgate) -> Any:
    body = await read_body(request, ApproveBody)
    edits = parse_edits(**body.edits.model_dump()) if body.edits else None
    decision = Decision(
        decision="approve",
        approver=check_person(body.approver),
        reason=body.reason,
        edits=edits,
        channel="api",
    )
    return dump(await app.sends.decide(request.path_params["send_id"], decision))


async def reject(request: Request, app: Mailgate) -> Any:
    body = await read_body(request, RejectBody)
    decision = Decision(decision="reject", approver=check_person(body.approver), reason=body.reason, channel="api")
    return dump(await app.sends.decide(request.path_params["send_id"], decision))


async def show_send(request: Request, app: Mailgate) -> Any:
    return dump(await app.sends.status(request.path_params["send_id"]))


async def list_mailboxes(request: Request, app: Mailgate) -> Any:
    return {"mailboxes": dump(list(await app.mailboxes.all()))}


async def create_mailbox(request: Request, app: Mailgate) -> Any:
    body = await read_body(request, MailboxBody)
    config = await app.mailboxes.create(
        body.address, created_by="admin", mode=body.mode, display_name=body.display_name
    )
    return dump(config)


async def set_mode(request: Request, app: Mailgate) -> Any:
    body = await read_body(request, ModeBody)
    config = await app.mailboxes.set_mode(
        request.path_params["address"],
        body.mode,
        actor=check_person(body.actor, "actor"),
        role="human",
        reason=body.reason,
    )
    return dump(config)


class AckBody(Body):
    reviewer: str = Field(min_length=1, max_length=200)


async def configure_mailbox(request: Request, app: Mailgate) -> Any:
    body = await read_body(request, ConfigureBody)
    changes = PolicyChanges(**body.model_dump(exclude={"actor"}, exclude_unset=True))
    config = await app.mailboxes.configure(
        request.path_params["address"], changes, actor=check_person(body.actor, "actor")
    )
    return dump(config)


async def list_reviews(request: Request, app: Mailgate) -> Any:
    include = request.query_params.get("include_acked") in ("1", "true")
    reviews = await app.mailboxes.reviews(request.query_params.get("mailbox") or None, include_acked=include)
    return {"reviews": dump(list(reviews))}


async def ack_review(request: Request, app: Mailgate) -> Any:
    body = await read_body(request, AckBody)
    return dump(await app.ack_review(request.path_params["send_id"], check_person(body.reviewer, "reviewer")))


async def list_upgrades(request: Request, app: Mailgate) -> Any:
    upgrades = await app.mailboxes.upgrades(request.query_params.get("mailbox") or None)
    return {"upgrades": dump(list(upgrades))}


async def show_audit(request: Request, app: Mailgate) -> Any:
    query = request.query_params
    limit = query.get("limit", "50")
    if not (limit.isascii() and limit.isdigit()):
        raise InvalidInput("limit must be a number from 1 to 200")
    page = await audit_log(
        app.mailboxes,
        app.sends,
        mailbox=query.get("mailbox") or None,
        send_id=query.get("send_id") or None,
        limit=int(limit),
        cursor=query.get("cursor") or None,
    )
    return dump(page)


async def list_inbound(request: Request, app: Mailgate) -> Any:
    held = await app.inbox.held(request.query_params.get("mailbox") or None)
    return {"inbound": dump(list(held))}


async def release_inbound(request: Request, app: Mailgate) -> Any:
    return await _decide_held(request, app, "release")


async def discard_inbound(request: Request, app: Mailgate) -> Any:
    return await _decide_held(request, app, "discard")


async def _decide_held(request: Request, app: Mailgate, change: Literal["release", "discard"]) -> Any:
    body = await read_body(request, HeldBody)
    email = await app.inbox.decide_held(
        request.path_params["email_id"], change, check_person(body.actor, "actor"), request.path_params["mailbox"]
    )
    return dump(email)


def routes(app: Mailgate) -> list[Route]:
    def route(path: str, handler: Handler, method: Literal["GET", "POST"]) -> Route:
        return Route(path, endpoint(app, handler), methods=[method])

    return [
        route("/api/approvals", list_approvals, "GET"),
        route("/api/approvals/{send_id}/approve", approve, "POST"),
        route("/api/approvals/{send_id}/reject", reject, "POST"),
        route("/api/sends/{send_id}", show_send, "GET"),
        route("/api/mailboxes", list_mailboxes, "GET"),
        route("/api/mailboxes", create_mailbox, "POST"),
        route("/api/mailboxes/{address}/mode", set_mode, "POST"),
        route("/api/mailboxes/{address}", configure_mailbox, "POST"),
        route("/api/reviews", list_reviews, "GET"),
        route("/api/reviews/{send_id}/ack", ack_review, "POST"),
        route("/api/upgrades", list_upgrades, "GET"),
        route("/api/audit", show_audit, "GET"),
        route("/api/inbound", list_inbound, "GET"),
        route("/api/inbound/{mailbox}/{email_id}/release", release_inbound, "POST"),
        route("/api/inbound/{mailbox}/{email_id}/discard", discard_inbound, "POST"),
    ]
