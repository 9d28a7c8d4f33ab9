"""Bulk trash requests on the dashboard: the list, one request's emails, approve and reject."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from server.errors import MailgateError
from server.trash_approvals import parse_trash_id, trash_emails
from server.web.dashboard.approvals import decidable_trash
from server.web.dashboard.common import Ctx, Dashboard
from workflows.models import Decision


def routes(dash: Dashboard) -> list[Route]:
    app = dash.app

    async def index(ctx: Ctx) -> Response:
        # Like the pending page: only what this person may decide (never their own agent's).
        return dash.page(ctx, "trash_list.html", requests=await decidable_trash(ctx, None))

    async def show(ctx: Ctx) -> Response:
        request_id = parse_trash_id(ctx.request.path_params["request_id"])
        state = await app.trash.status(request_id)
        ctx.check_sees(state.mailbox)
        return dash.page(
            ctx,
            "trash.html",
            state=state,
            # What the human decides on: each email's sender and subject, not only its id.
            emails=await trash_emails(app.inbox, state),
            can_decide=await ctx.may_decide(state.mailbox, state.requester),
        )

    async def decide(ctx: Ctx, verdict: str) -> Response:
        request_id = parse_trash_id(ctx.request.path_params["request_id"])
        here = f"/trash/{request_id}"
        asked = await app.trash.status(request_id)
        await ctx.check_decides(asked.mailbox, asked.requester)
        reason = str(ctx.form.get("reason", "")).strip()[:2000]
        if verdict == "reject" and not reason:
            return dash.redirect(ctx.request, here, "error", "A rejection needs a reason for the agent.")
        decision = Decision(
            decision="approve" if verdict == "approve" else "reject",
            approver=ctx.session.name,
            reason=reason or None,
            channel="dashboard",
        )
        try:
            state = await app.trash.decide(request_id, decision)
        except MailgateError as exc:
            return dash.redirect(ctx.request, here, "error", str(exc))
        done = "Approved" if verdict == "approve" else "Rejected"
        return dash.redirect(ctx.request, "/trash", "ok", f"{done} trashing {len(state.email_ids)} emails.")

    async def approve(ctx: Ctx) -> Response:
        return await decide(ctx, "approve")

    async def reject(ctx: Ctx) -> Response:
        return await decide(ctx, "reject")

    return [
        Route("/trash", dash.view(index), methods=["GET"]),
        Route("/trash/{request_id}", dash.view(show), methods=["GET"]),
        Route("/trash/{request_id}/approve", dash.view(approve), methods=["POST"]),
        Route("/trash/{request_id}/reject", dash.view(reject), methods=["POST"]),
    ]
