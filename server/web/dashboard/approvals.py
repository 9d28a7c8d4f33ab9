"""Pending approvals, a send's page, and the decisions: approve, reject, edit then approve, bulk."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from server.app import Mailgate
from server.deciders import decidable
from server.errors import InvalidInput, MailgateError
from server.trash_approvals import TrashSummary, is_trash_id, parse_trash_id
from server.validation import parse_edits, parse_mailbox, parse_send_id
from server.web.dashboard.common import SECURITY_HEADERS, Ctx, Dashboard
from server.web.dashboard.outgoing import outgoing
from server.web.dashboard.render import address_lines, addresses, draft_diff
from server.web.dashboard.threads import thread_for
from workflows.models import Decision, Edits, EmailDraft, SendState, SendSummary
from workflows.send import SendEmailWorkflow

MAX_SCAN = 5000
PAGE_SIZE = 50
QUERY_TIMEOUT = timedelta(seconds=2)
EDIT_FIELDS = ("subject", "to", "cc", "bcc", "body")


@dataclass(frozen=True)
class Pending:
    sends: list[SendSummary]
    complete: bool  # False when more than MAX_SCAN sends wait: the list is then not all of them


async def pending_sends(app: Mailgate, mailbox: str | None = None) -> Pending:
    """Every pending send (of one mailbox, or all), oldest first (sorted here: SQLite visibility cannot ORDER BY)."""
    sends: list[SendSummary] = []
    cursor = None
    complete = False
    while len(sends) < MAX_SCAN:
        limit = min(500, MAX_SCAN - len(sends))
        page = await app.sends.search(mailbox=mailbox, status="pending_approval", limit=limit, cursor=cursor)
        sends.extend(page.sends)
        cursor = page.next_cursor
        if cursor is None:
            complete = True
            break
    ordered = sorted(sends, key=lambda s: (s.requested_at is None, s.requested_at, s.send_id))
    return Pending(ordered, complete)


async def decidable_trash(ctx: Ctx, mailbox: str | None) -> list[TrashSummary]:
    """Pending bulk trash requests this person may decide (every one for the admin token)."""
    found = await ctx.app.trash.pending(mailbox)
    return found if ctx.person is None else await decidable(ctx.app, ctx.person, found)


def shown_digest(draft: EmailDraft) -> str:
    """What the pending list shows of a send, condensed: a bulk approval names the version it saw."""
    shown = {
        "to": [str(a) for a in draft.to],
        "cc": [str(a) for a in draft.cc],
        "bcc": [str(a) for a in draft.bcc],
        "subject": draft.subject,
        "body": draft.body,
        "attachments": [[a.filename, a.content_type, a.size] for a in draft.attachments],
    }
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:24]


async def visible_pending(ctx: Ctx, mailbox: str | None) -> Pending:
    """The pending sends of the mailboxes this person has a role on (all of them for the admin token)."""
    if mailbox is not None:
        ctx.check_sees(mailbox)
    found = await pending_sends(ctx.app, mailbox)
    if ctx.person is None:
        return found
    return Pending(sends=[s for s in found.sends if ctx.sees(s.mailbox)], complete=found.complete)


async def quick_state(app: Mailgate, send_id: str) -> SendState | None:
    """The send's state if a worker answers soon; the pending list stays usable while none does."""
    handle = app.client.get_workflow_handle_for(SendEmailWorkflow.run, send_id)
    try:
        return await handle.query(SendEmailWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
    except (TimeoutError, RPCError, WorkflowQueryFailedError):
        return None


def fingerprint(sends: list[SendSummary]) -> str:
    return hashlib.sha256(" ".join(sorted(s.send_id for s in sends)).encode()).hexdigest()[:16]


def temporal_link(app: Mailgate, send_id: str) -> str | None:
    ui = app.settings.temporal_ui
    if not ui:
        return None
    return f"{ui}/namespaces/{quote(app.settings.temporal_namespace)}/workflows/{quote(send_id)}"


def listing(mailbox: str) -> str:
    """Back to the pending list of the mailbox a decision was about."""
    return f"/?mailbox={quote(mailbox, safe='@')}"


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.replace("\r\n", "\n").split("\n") if line.strip()]


def edits_from_form(ctx: Ctx, original: EmailDraft, prefix: str = "") -> Edits | None:
    """The fields the human changed (compared with the agent's draft), validated like the API's."""
    form = ctx.form
    values = {name: str(form.get(prefix + name, "")) for name in EDIT_FIELDS if prefix + name in form}
    changed: dict[str, object] = {}
    if "subject" in values and values["subject"].strip() != original.subject:
        changed["subject"] = values["subject"].strip()
    if "body" in values:
        body = values["body"].replace("\r\n", "\n")
        if body != original.body.replace("\r\n", "\n"):
            changed["body"] = body
    for name, current in (("to", original.to), ("cc", original.cc), ("bcc", original.bcc)):
        if name in values and _lines(values[name]) != [str(a) for a in current]:
            changed[name] = _lines(values[name])
    return parse_edits(**changed)  # type: ignore[arg-type]


def routes(dash: Dashboard) -> list[Route]:
    app = dash.app

    def only(ctx: Ctx) -> str | None:
        raw = ctx.request.query_params.get("mailbox", "").strip()
        return parse_mailbox(raw) if raw else None

    def page_number(ctx: Ctx) -> int:
        raw = ctx.request.query_params.get("page", "1")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_SCAN // PAGE_SIZE + 1:
            raise InvalidInput("page: a page number from the list's own links")
        return int(raw)

    async def index(ctx: Ctx) -> Response:
        mailbox = only(ctx)
        number = page_number(ctx)
        found = await visible_pending(ctx, mailbox)
        total = len(found.sends)
        pages = max(1, -(-total // PAGE_SIZE))
        number = min(number, pages)
        first = (number - 1) * PAGE_SIZE
        sends = found.sends[first : first + PAGE_SIZE]
        states = await asyncio.gather(*(quick_state(app, s.send_id) for s in sends))
        details = {s.send_id: state for s, state in zip(sends, states, strict=True) if state is not None}
        # Visibility lags the workflow by a moment: drop what its own state says was just decided.
        sends = [s for s in sends if s.send_id not in details or details[s.send_id].status == "pending_approval"]
        groups: dict[str, list[SendSummary]] = defaultdict(list)
        for send in sends:
            groups[send.mailbox].append(send)
        return dash.page(
            ctx,
            "pending.html",
            trash_requests=await decidable_trash(ctx, mailbox) if number == 1 else [],
            groups=sorted(groups.items()),
            details=details,
            digests={i: shown_digest(state.original) for i, state in details.items()},
            count=total,
            complete=found.complete,
            first=first + 1,
            last=first + len(sends),
            number=number,
            pages=pages,
            fingerprint=fingerprint(found.sends),
            mailbox=mailbox,
        )

    async def pending_json(ctx: Ctx) -> Response:
        found = await visible_pending(ctx, only(ctx))
        return JSONResponse(
            {"count": len(found.sends), "fingerprint": fingerprint(found.sends)}, headers=SECURITY_HEADERS
        )

    async def show(ctx: Ctx) -> Response:
        if is_trash_id(ctx.request.path_params["send_id"]):  # an id pasted from a listing: its own page
            return dash.redirect(ctx.request, f"/trash/{parse_trash_id(ctx.request.path_params['send_id'])}")
        send_id = parse_send_id(ctx.request.path_params["send_id"])
        state = await app.sends.status(send_id)
        ctx.check_sees(state.mailbox)
        try:
            mailbox = await app.mailboxes.config(state.mailbox)
        except MailgateError:
            mailbox = None
        draft = state.approved or state.original
        return dash.page(
            ctx,
            "send.html",
            state=state,
            draft=draft,
            mail=await asyncio.to_thread(outgoing, state, draft),  # a hostile body costs ~1 s to check
            mailbox=mailbox,
            temporal_url=temporal_link(app, send_id),
            thread=await asyncio.to_thread(thread_for, app.sandbox, state.mailbox, draft, state.message_id),
            diff=draft_diff(state.original, state.approved) if state.approved else [],
            lines=address_lines,
            addresses=addresses,
            can_decide=await ctx.may_decide(state.mailbox, state.requester),
        )

    async def preview(ctx: Ctx) -> Response:
        send_id = parse_send_id(ctx.request.path_params["send_id"])
        state = await app.sends.status(send_id)
        await ctx.check_decides(state.mailbox, state.requester)
        edits = edits_from_form(ctx, state.original)
        if edits is None:
            return dash.redirect(ctx.request, f"/sends/{send_id}", "error", "You changed nothing; approve it as is.")
        edited = edits.apply(state.original)
        return dash.page(
            ctx,
            "confirm_edits.html",
            state=state,
            edits=edits,
            edited=edited,
            mail=await asyncio.to_thread(outgoing, state, edited),
            diff=draft_diff(state.original, edited),
            reason=str(ctx.form.get("reason", "")),
            lines=address_lines,
        )

    async def approve(ctx: Ctx) -> Response:
        send_id = parse_send_id(ctx.request.path_params["send_id"])
        edits = None
        await ctx.check_decides(*await app.sends.parties(send_id))
        if any(f"edit_{name}" in ctx.form for name in EDIT_FIELDS):
            edits = edits_from_form(ctx, (await app.sends.status(send_id)).original, prefix="edit_")
        decision = Decision(
            decision="approve",
            approver=ctx.session.name,
            reason=str(ctx.form.get("reason", "")).strip() or None,
            edits=edits,
            channel="dashboard",
        )
        try:
            state = await app.sends.decide(send_id, decision)
        except MailgateError as exc:
            return dash.redirect(ctx.request, f"/sends/{send_id}", "error", str(exc))
        what = "with your edits" if edits else "as written"
        subject = (state.approved or state.original).subject
        return dash.redirect(ctx.request, listing(state.mailbox), "ok", f"Approved “{subject}” {what}.")

    async def reject(ctx: Ctx) -> Response:
        send_id = parse_send_id(ctx.request.path_params["send_id"])
        reason = str(ctx.form.get("reason", "")).strip()
        if not reason:
            return dash.redirect(ctx.request, f"/sends/{send_id}", "error", "A rejection needs a reason for the agent.")
        await ctx.check_decides(*await app.sends.parties(send_id))
        decision = Decision(decision="reject", approver=ctx.session.name, reason=reason[:2000], channel="dashboard")
        try:
            state = await app.sends.decide(send_id, decision)
        except MailgateError as exc:
            return dash.redirect(ctx.request, f"/sends/{send_id}", "error", str(exc))
        return dash.redirect(ctx.request, listing(state.mailbox), "ok", f"Rejected “{state.original.subject}”.")

    async def bulk(ctx: Ctx) -> Response:
        back = str(ctx.form.get("mailbox", "")).strip()
        home = listing(parse_mailbox(back)) if back else "/"
        action = str(ctx.form.get("action", ""))
        picked = [str(v) for v in ctx.form.getlist("send_id")][:PAGE_SIZE]
        reason = str(ctx.form.get("reason", "")).strip()
        if action not in ("approve", "reject"):
            raise InvalidInput("choose approve or reject")
        if not picked:
            return dash.redirect(ctx.request, home, "error", "Select at least one send first.")
        if action == "reject" and not reason:
            return dash.redirect(ctx.request, home, "error", "Rejecting needs a reason for the agent.")
        decision = Decision(
            decision="approve" if action == "approve" else "reject",
            approver=ctx.session.name,
            reason=reason[:2000] or None,
            channel="dashboard-bulk",
        )

        async def one(value: str) -> str | None:
            raw_id, _, digest = value.partition(":")
            try:
                send_id = parse_send_id(raw_id)
                state = await app.sends.status(send_id)
                await ctx.check_decides(state.mailbox, state.requester)
                # Approve only what the list showed in full: every recipient, Bcc, attachments.
                if action == "approve" and (not digest or digest != shown_digest(state.original)):
                    return f"{send_id}: the list did not show all of it; open it and decide on its page"
                await app.sends.decide(send_id, decision)
            except MailgateError as exc:
                return f"{raw_id}: {exc}"
            return None

        problems = [p for p in await asyncio.gather(*(one(v) for v in picked)) if p]
        done = len(picked) - len(problems)
        verb = "Approved" if action == "approve" else "Rejected"
        message = f"{verb} {done} of {len(picked)} sends." + (" Refused: " + "; ".join(problems) if problems else "")
        return dash.redirect(ctx.request, home, "error" if problems else "ok", message)

    async def attachment(ctx: Ctx) -> Response:
        send_id = parse_send_id(ctx.request.path_params["send_id"])
        state = await app.sends.status(send_id)
        ctx.check_sees(state.mailbox)
        items = (state.approved or state.original).attachments
        index = ctx.request.path_params["index"]
        if not (index.isascii() and index.isdigit()) or int(index) >= len(items):
            raise InvalidInput("no such attachment")
        item = items[int(index)]
        safe_name = quote(item.filename, safe="")
        # Always a download, never rendered here: an attachment is the agent's content.
        return Response(
            base64.b64decode(item.content_b64),
            media_type="application/octet-stream",
            headers={**SECURITY_HEADERS, "Content-Disposition": f"attachment; filename*=UTF-8''{safe_name}"},
        )

    return [
        Route("/", dash.view(index), methods=["GET"]),
        Route("/pending.json", dash.view(pending_json, activity=False), methods=["GET"]),
        Route("/bulk", dash.view(bulk), methods=["POST"]),
        Route("/sends/{send_id}", dash.view(show), methods=["GET"]),
        Route("/sends/{send_id}/preview", dash.view(preview), methods=["POST"]),
        Route("/sends/{send_id}/approve", dash.view(approve), methods=["POST"]),
        Route("/sends/{send_id}/reject", dash.view(reject), methods=["POST"]),
        Route("/sends/{send_id}/attachments/{index}", dash.view(attachment), methods=["GET"]),
    ]
