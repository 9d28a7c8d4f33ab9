"""The sandbox mail viewer: what the embedded sandbox delivered, by mailbox and thread."""

from __future__ import annotations

import asyncio

from starlette.responses import Response
from starlette.routing import Route

from server.errors import InvalidInput, NotFound
from server.validation import parse_mailbox
from server.web.dashboard.common import Ctx, Dashboard
from server.web.dashboard.render import sanitize_report
from server.web.dashboard.threads import mailbox_threads, parse
from workflows.providers.sandbox.viewer import stored_message


def routes(dash: Dashboard) -> list[Route]:
    app = dash.app

    async def index(ctx: Ctx) -> Response:
        ctx.check_admin()  # the sandbox holds every mailbox's mail
        raw = ctx.request.query_params.get("mailbox", "").strip()
        mailbox = parse_mailbox(raw) if raw else None
        boxes = await app.mailboxes.all()
        threads = await asyncio.to_thread(mailbox_threads, app.sandbox, mailbox)
        deliveries = await asyncio.to_thread(app.sandbox.deliveries, mailbox, None)
        outside = [d for d in deliveries if not d.local][-200:]
        return dash.page(
            ctx, "sandbox.html", mailbox=mailbox, boxes=boxes, threads=threads, outside=list(reversed(outside))
        )

    async def message(ctx: Ctx) -> Response:
        ctx.check_admin()
        row = ctx.request.path_params["row"]
        if not (row.isascii() and row.isdigit()):
            raise InvalidInput("not a message number")
        stored = await asyncio.to_thread(stored_message, app.sandbox, int(row))
        if stored is None:
            raise NotFound(f"no sandbox message {row}")
        parsed = await asyncio.to_thread(parse, stored)
        shown = await asyncio.to_thread(sanitize_report, parsed.html) if parsed.html else None
        return dash.page(ctx, "message.html", message=parsed, shown=shown)

    return [
        Route("/sandbox", dash.view(index), methods=["GET"]),
        Route("/sandbox/messages/{row}", dash.view(message), methods=["GET"]),
    ]
