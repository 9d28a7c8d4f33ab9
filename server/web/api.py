"""The approver JSON API under /api/: people by their API tokens, and the admin token (break glass)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.app import Mailgate
from server.audit import audit_log
from server.deciders import decidable, refusal
from server.errors import Forbidden, InvalidInput, MailgateError, NotFound
from server.identities import Person
from server.trash_approvals import is_trash_id
from server.validation import PolicyChanges, check_person, parse_edits
from server.web.security import api_caller
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
    # Optional with a person's token (the approver is its owner); required with the admin token.
    approver: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)
    edits: EditsBody | None = None


class RejectBody(Body):
    approver: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)


class HeldBody(Body):
    actor: str | None = Field(default=None, min_length=1, max_length=200)


class MailboxBody(Body):
    address: str
    display_name: str = ""
    mode: OversightMode | None = None


class ConfigureBody(PolicyChanges):
    actor: str | None = Field(default=None, min_length=1, max_length=200)


class ModeBody(Body):
    mode: OversightMode
    actor: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)


def dump(model: BaseModel | Sequence[BaseModel]) -> Any:
    if not isinstance(model, BaseModel):
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
        caller = await api_caller(request, app.secrets, app.identities)
        if isinstance(caller, Response):
            return caller
        request.state.caller = caller
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


def caller(request: Request) -> Person:
    person: Person = request.state.caller
    return person


def who(request: Request, named: str | None, field: str = "approver") -> str:
    """The acting person: a person's token names them (naming someone else is refused);
    the admin token is break glass and must say who is acting."""
    person = caller(request)
    if not person.email:
        return check_person(named or "", field)
    if named is not None and named.strip().lower() != person.email:
        raise Forbidden(f"{field}: this token belongs to {person.email}; it cannot act as {named.strip()}")
    return person.email


def visible(request: Request, mailbox: str) -> None:
    if not caller(request).can_see(mailbox):
        raise NotFound(f"mailbox {mailbox} not found or not yours")


def admin_only(request: Request) -> None:
    if not caller(request).admin:
        raise Forbidden("only an admin may manage mailboxes; ask one, or `mailgate people set --admin`")


async def may_decide(request: Request, app: Mailgate, mailbox: str, requester: str | None = None) -> None:
    """Only a mailbox's approvers decide, never for their own agent (server/deciders.py)."""
    person = caller(request)
    if not person.email:
        return  # the admin token: the workflow still checks the mailbox's approvers list
    refused = await refusal(app, person, mailbox, requester)
    if refused is not None:
        raise Forbidden(refused)


def channel(request: Request) -> str:
    return "api" if caller(request).email else "api (admin token)"


async def list_approvals(request: Request, app: Mailgate) -> Any:
    query = request.query_params
    limit = query.get("limit", "50")
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 500:
        raise InvalidInput("limit must be a number from 1 to 500")
    if query.get("mailbox"):
        visible(request, query["mailbox"])
    page = await app.sends.search(
        mailbox=query.get("mailbox") or None,
        status=_status_filter(query.get("status")),
        limit=int(limit),
        cursor=query.get("cursor") or None,
    )
    # A person sees only what they may decide (a page may then hold fewer than limit).
    person = caller(request)
    sends = await decidable(app, person, page.sends) if person.email else page.sends
    answer: dict[str, Any] = {"approvals": dump(sends), "next_cursor": page.next_cursor}
    if query.get("status") in (None, "pending", "all") and not query.get("cursor"):
        # Bulk trash requests wait for the same humans; decided at the same approve/reject URLs.
        every = query.get("status") == "all"
        trash = await app.trash.pending(query.get("mailbox") or None, None if every else "pending_approval")
        # The same rule as sends: a person sees only what they may decide.
        trash = await decidable(app, person, trash) if person.email else trash
        answer["trash_requests"] = dump(trash)
    return answer


async def _decision_for(request: Request, app: Mailgate, named: str | None) -> str:
    approver = who(request, named)
    some_id = request.path_params["send_id"]
    if not caller(request).email and not is_trash_id(some_id):
        # The admin token may decide any send (the workflow still checks the mailbox's approvers):
        # nothing to look up first; the update itself finds an unknown send (404).
        return approver
    if is_trash_id(some_id):
        trash = await app.trash.status(some_id)
        mailbox, requester = trash.mailbox, trash.requester
    else:
        mailbox, requester = await app.sends.parties(some_id)
    visible(request, mailbox)
    await may_decide(request, app, mailbox, requester)
    return approver


async def approve(request: Request, app: Mailgate) -> Any:
    body = await read_body(request, ApproveBody)
    edits = parse_edits(**body.edits.model_dump()) if body.edits else None
    decision = Decision(
        decision="approve",
        approver=await _decision_for(request, app, body.approver),
        reason=body.reason,
        edits=edits,
        channel=channel(request),
    )
    if is_trash_id(request.path_params["send_id"]):
        return dump(await app.trash.decide(request.path_params["send_id"], decision))
    return dump(await app.sends.decide(request.path_params["send_id"], decision))


async def reject(request: Request, app: Mailgate) -> Any:
    body = await read_body(request, RejectBody)
    approver = await _decision_for(request, app, body.approver)
    decision = Decision(decision="reject", approver=approver, reason=body.reason, channel=channel(request))
    if is_trash_id(request.path_params["send_id"]):
        return dump(await app.trash.decide(request.path_params["send_id"], decision))
    return dump(await app.sends.decide(request.path_params["send_id"], decision))


async def show_send(request: Request, app: Mailgate) -> Any:
    if is_trash_id(request.path_params["send_id"]):
        trash = await app.trash.status(request.path_params["send_id"])
        visible(request, trash.mailbox)
        return dump(trash)
    state = await app.sends.status(request.path_params["send_id"])
    visible(request, state.mailbox)
    return dump(state)


async def list_mailboxes(request: Request, app: Mailgate) -> Any:
    boxes = [b for b in await app.mailboxes.all() if caller(request).can_see(b.address)]
    return {"mailboxes": dump(boxes)}


async def create_mailbox(request: Request, app: Mailgate) -> Any:
    admin_only(request)
    body = await read_body(request, MailboxBody)
    config = await app.mailboxes.create(
        body.address, created_by=caller(request).email or "admin", mode=body.mode, display_name=body.display_name
    )
    return dump(config)


async def set_mode(request: Request, app: Mailgate) -> Any:
    admin_only(request)
    body = await read_body(request, ModeBody)
    config = await app.mailboxes.set_mode(
        request.path_params["address"],
        body.mode,
        actor=who(request, body.actor, "actor"),
        role="human",
        reason=body.reason,
    )
    return dump(config)


class AckBody(Body):
    reviewer: str = Field(min_length=1, max_length=200)


async def configure_mailbox(request: Request, app: Mailgate) -> Any:
    body = await read_body(request, ConfigureBody)
    changes = PolicyChanges(**body.model_dump(exclude={"actor"}, exclude_unset=True))
    admin_only(request)
    config = await app.mailboxes.configure(
        request.path_params["address"], changes, actor=who(request, body.actor, "actor")
    )
    return dump(config)


async def list_reviews(request: Request, app: Mailgate) -> Any:
    include = request.query_params.get("include_acked") in ("1", "true")
    reviews = await app.mailboxes.reviews(request.query_params.get("mailbox") or None, include_acked=include)
    return {"reviews": dump([r for r in reviews if caller(request).can_see(r.mailbox)])}


async def ack_review(request: Request, app: Mailgate) -> Any:
    body = await read_body(request, AckBody)
    reviewer = who(request, body.reviewer, "reviewer")
    visible(request, (await app.sends.status(request.path_params["send_id"])).mailbox)
    return dump(await app.ack_review(request.path_params["send_id"], reviewer))


async def list_upgrades(request: Request, app: Mailgate) -> Any:
    upgrades = await app.mailboxes.upgrades(request.query_params.get("mailbox") or None)
    return {"upgrades": dump([u for u in upgrades if caller(request).can_see(u.mailbox)])}


async def show_audit(request: Request, app: Mailgate) -> Any:
    query = request.query_params
    limit = query.get("limit", "50")
    if not (limit.isascii() and limit.isdigit()):
        raise InvalidInput("limit must be a number from 1 to 200")
    if query.get("mailbox"):
        visible(request, query["mailbox"])
    if query.get("send_id"):
        visible(request, (await app.sends.status(query["send_id"])).mailbox)
    if not (caller(request).admin or query.get("mailbox") or query.get("send_id")):
        raise InvalidInput("mailbox or send_id: one is required unless you are an admin")
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
    return {"inbound": dump([h for h in held if caller(request).can_see(h.mailbox)])}


async def release_inbound(request: Request, app: Mailgate) -> Any:
    return await _decide_held(request, app, "release")


async def discard_inbound(request: Request, app: Mailgate) -> Any:
    return await _decide_held(request, app, "discard")


async def _decide_held(request: Request, app: Mailgate, change: Literal["release", "discard"]) -> Any:
    body = await read_body(request, HeldBody)
    actor = who(request, body.actor, "actor")
    mailbox = request.path_params["mailbox"]
    visible(request, mailbox)
    await may_decide(request, app, mailbox)
    email = await app.inbox.decide_held(request.path_params["email_id"], change, actor, mailbox)
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
