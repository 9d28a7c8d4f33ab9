"""Mailbox oversight pages: modes (loosening asks for confirmation), the monitored review list,
upgrade requests, and inbound mail held by gated_all."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from server.app import Mailgate
from server.errors import InvalidInput
from server.tools.mailboxes import MODE_MEANING
from server.validation import parse_mailbox, parse_send_id
from server.web.dashboard.approvals import QUERY_TIMEOUT
from server.web.dashboard.common import Ctx, Dashboard
from workflows.ids import mailbox_workflow_id
from workflows.mail.visibility import show_invisible
from workflows.mailbox import MailboxWorkflow
from workflows.mailbox_models import MailboxState
from workflows.models import MODES, OversightMode, is_looser
from workflows.read_models import EmailChange


@dataclass(frozen=True)
class Box:
    address: str
    state: MailboxState | None


async def mailbox_states(app: Mailgate) -> list[Box]:
    """Every mailbox with its state; a mailbox whose worker does not answer soon shows as unknown."""
    summaries = await app.mailboxes.all()

    async def one(address: str) -> Box:
        handle = app.client.get_workflow_handle_for(MailboxWorkflow.run, mailbox_workflow_id(address))
        try:
            return Box(address, await handle.query(MailboxWorkflow.describe, rpc_timeout=QUERY_TIMEOUT))
        except (TimeoutError, RPCError, WorkflowQueryFailedError):
            return Box(address, None)

    return list(await asyncio.gather(*(one(s.address) for s in summaries)))


def _mode(raw: object) -> OversightMode:
    for mode in MODES:
        if raw == mode:
            return mode
    raise InvalidInput(f"mode must be one of {', '.join(MODES)}")


def routes(dash: Dashboard) -> list[Route]:
    app = dash.app

    async def mailboxes(ctx: Ctx) -> Response:
        boxes = [b for b in await mailbox_states(app) if ctx.sees(b.address)]
        return dash.page(ctx, "mailboxes.html", boxes=boxes, modes=MODES, meaning=MODE_MEANING)

    async def set_mode(ctx: Ctx) -> Response:
        ctx.check_admin()
        address = parse_mailbox(ctx.request.path_params["address"])
        mode = _mode(ctx.form.get("mode"))
        reason = str(ctx.form.get("reason", "")).strip()[:2000]
        config = await app.mailboxes.config(address)
        if mode == config.mode:
            return dash.redirect(ctx.request, "/mailboxes", "ok", f"{address} is already {mode}.")
        if is_looser(mode, config.mode) and ctx.form.get("confirmed") != "yes":
            # Loosening gives the agent more freedom: show what changes, and ask once more.
            return dash.page(
                ctx,
                "confirm_mode.html",
                address=address,
                old=config.mode,
                new=mode,
                reason=reason,
                meaning=MODE_MEANING,
            )
        await app.mailboxes.set_mode(address, mode, actor=ctx.session.name, role="human", reason=reason)
        return dash.redirect(ctx.request, "/mailboxes", "ok", f"{address} is now {mode}: {MODE_MEANING[mode]}.")

    async def reviews(ctx: Ctx) -> Response:
        boxes = [b for b in await mailbox_states(app) if ctx.sees(b.address)]
        items = [
            (box.address, item)
            for box in boxes
            if box.state is not None
            for item in sorted(box.state.reviews, key=lambda r: r.at, reverse=True)
        ]
        return dash.page(ctx, "reviews.html", items=items, unacked=sum(1 for _, i in items if i.acked_by is None))

    async def ack(ctx: Ctx) -> Response:
        address = parse_mailbox(str(ctx.form.get("mailbox", "")))
        send_id = parse_send_id(str(ctx.form.get("send_id", "")))
        ctx.check_sees(address)
        await app.mailboxes.ack_review(address, send_id, actor=ctx.session.name)
        return dash.redirect(ctx.request, "/reviews", "ok", f"Marked {send_id} as reviewed.")

    async def upgrades(ctx: Ctx) -> Response:
        ctx.check_admin()  # the codes loosen a mailbox: an admin's act
        boxes = await mailbox_states(app)
        now = datetime.now(UTC)
        listed = [
            (box.address, request.as_of(now), app.mailboxes.recorded_upgrade(request))
            for box in boxes
            if box.state is not None
            for request in sorted(box.state.upgrades, key=lambda u: u.requested_at, reverse=True)
        ]
        # The mode mailgate recorded for each request, and a code only for those it recorded.
        items = [(address, recorded.as_of(now) if recorded else request) for address, request, recorded in listed]
        # Codes are derived from the server key and shown only here, to a signed-in human.
        codes = {r.request_id: app.mailboxes.upgrade_code(r.request_id) for _, _, r in listed if r is not None}
        return dash.page(ctx, "upgrades.html", items=items, codes=codes)

    async def inbound(ctx: Ctx) -> Response:
        held = [h for h in await app.inbox.held() if ctx.sees(h.mailbox)]
        return dash.page(ctx, "inbound.html", held=held)

    async def held_email(ctx: Ctx) -> Response:
        """One held email as the agent would read it once released: read_email's own view of it."""
        mailbox = parse_mailbox(ctx.request.path_params["mailbox"])
        ctx.check_sees(mailbox)
        email_id = ctx.request.path_params["email_id"]
        view = await app.inbox.read(mailbox, email_id, mark_read=False, include_held=True)
        return dash.page(ctx, "held.html", email=view)

    async def decide_inbound(ctx: Ctx) -> Response:
        action = str(ctx.form.get("action", ""))
        if action not in ("release", "discard"):
            raise InvalidInput("choose release or discard")
        mailbox = parse_mailbox(str(ctx.form.get("mailbox", "")))
        email_id = str(ctx.form.get("email_id", "")).strip()
        change: EmailChange = "release" if action == "release" else "discard"
        await ctx.check_decides(mailbox)
        done = await app.inbox.decide_held(email_id, change, ctx.session.name, mailbox)
        verb = "Released" if action == "release" else "Discarded"
        return dash.redirect(ctx.request, "/inbound", "ok", f"{verb} “{show_invisible(done.subject)}” in {mailbox}.")

    return [
        Route("/mailboxes", dash.view(mailboxes), methods=["GET"]),
        Route("/mailboxes/{address}/mode", dash.view(set_mode), methods=["POST"]),
        Route("/reviews", dash.view(reviews), methods=["GET"]),
        Route("/reviews/ack", dash.view(ack), methods=["POST"]),
        Route("/upgrades", dash.view(upgrades), methods=["GET"]),
        Route("/inbound", dash.view(inbound), methods=["GET"]),
        Route("/inbound", dash.view(decide_inbound), methods=["POST"]),
        Route("/inbound/{mailbox}/{email_id}", dash.view(held_email), methods=["GET"]),
    ]
