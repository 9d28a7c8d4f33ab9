"""One-click links from notice emails: GET shows a confirmation page, only its POST decides.

Mail scanners and link previewers open every link in an email; a GET that decided would let
them approve. The token names the send (or bulk trash request), the decision and the approver,
is signed and expires; its nonce is the signal's decision id, so a link works once (see
Sends.signal_decision and TrashApprovals.signal_decision). A link made for one id decides that
one only: the signature covers the id, and a send's link can never decide a trash or back.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.service import RPCError

from server.deciders import requester_refusal
from server.errors import MailgateError
from server.trash_approvals import is_trash_id
from server.web import trash_links
from server.web.bodies import TooLarge, read_form
from server.web.dashboard.approvals import quick_state
from server.web.dashboard.common import Dashboard
from server.web.dashboard.outgoing import outgoing
from workflows.models import SendState
from workflows.temporal import STATUS
from workflows.trust.links import LinkClaim, LinkError, link_key, read_token

SETTLE_SECONDS = 5.0


def routes(dash: Dashboard) -> list[Route]:
    app = dash.app
    key = link_key(app.secrets.secret_key)

    def claim_of(request: Request) -> LinkClaim:
        return read_token(key, request.path_params["token"], time.time())

    async def status(send_id: str) -> str | None:
        try:
            description = await app.client.get_workflow_handle(send_id).describe()
        except RPCError:
            return None
        return description.typed_search_attributes.get(STATUS)

    async def link_problem(claim: LinkClaim) -> str | None:
        """Why this link may not decide (from the workflow's description: no worker needed)."""
        try:
            description = await app.client.get_workflow_handle(claim.send_id).describe()
        except RPCError:
            return None  # the decision itself says what is wrong
        if claim.issued and claim.issued < description.start_time.timestamp() - 2:
            return (
                "This link was emailed about an earlier request under the same id, which ended; "
                "it cannot decide this one. Use the newest notice, or the dashboard."
            )
        # The rule of every front door: a mailbox may list an agent's owner among the approvers its
        # notices go to, and the owner must not decide what their own agent asked for.
        requester = (await description.memo()).get("requester")
        return await requester_refusal(app, claim.approver, requester if isinstance(requester, str) else None)

    def page(request: Request, status_code: int, **values: object) -> Response:
        defaults: dict[str, object] = {
            "claim": None,
            "state": None,
            "mail": None,
            "status": None,
            "message": "",
            "done": False,
        }
        return dash.html(request, "link.html", status_code, session=None, **{**defaults, **values})

    async def show(request: Request) -> Response:
        try:
            claim = claim_of(request)
        except LinkError as exc:
            return page(request, 410 if "expired" in str(exc) else 400, message=str(exc))
        if is_trash_id(claim.send_id):
            return await trash_links.show(dash, request, claim)
        current = await status(claim.send_id)
        state = await quick_state(app, claim.send_id)
        if current is None:
            return page(request, 404, claim=claim, message="This send no longer exists.")
        mail = await asyncio.to_thread(outgoing, state, state.approved or state.original) if state else None
        return page(request, 200, claim=claim, state=state, mail=mail, status=current)

    async def decide(request: Request) -> Response:
        try:
            claim = claim_of(request)
            form = await read_form(request, 64 * 1024)
        except LinkError as exc:
            return page(request, 410 if "expired" in str(exc) else 400, message=str(exc))
        except TooLarge as exc:
            return page(request, 413, message=str(exc))
        reason = str(form.get("reason", "")).strip()[:2000] or None
        problem = await link_problem(claim)
        if is_trash_id(claim.send_id):
            if problem:
                return trash_links.refused(dash, request, claim, problem)
            return await trash_links.decide(dash, request, claim, reason)
        if problem:
            return page(request, 403, claim=claim, message=problem)
        try:
            outcome = await app.sends.signal_decision(claim.send_id, claim.decision_for(reason))
        except MailgateError as exc:
            return page(request, exc.http_status, claim=claim, message=str(exc))
        if outcome == "duplicate":
            return page(request, 409, claim=claim, message="This link was already used; it works only once.")
        state = await settle(claim.send_id)
        return page(request, 200, claim=claim, state=state, status=state.status if state else None, done=True)

    async def settle(send_id: str) -> SendState | None:
        """Wait briefly for the worker to apply the decision, to say what happened."""
        deadline = time.monotonic() + SETTLE_SECONDS
        state = None
        while time.monotonic() < deadline:
            state = await quick_state(app, send_id)
            if state is not None and state.status != "pending_approval":
                return state
            await asyncio.sleep(0.1)
        return state

    return [
        Route("/links/{token}", show, methods=["GET"]),
        Route("/links/{token}", decide, methods=["POST"]),
    ]
