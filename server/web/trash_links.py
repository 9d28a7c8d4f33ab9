"""The one-click link pages of a bulk trash request (server/web/links.py reads and checks the token).

GET lists the emails the approver is asked about; only the POST decides, as a signal (works while
workers are down); the link's nonce is the decision id, so it works once.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import Response

from server.errors import MailgateError
from server.trash_approvals import trash_emails
from server.web.dashboard.common import Dashboard
from workflows.trash_approval import TrashState
from workflows.trust.links import LinkClaim

SETTLE_SECONDS = 5.0


def _page(dash: Dashboard, request: Request, status_code: int, claim: LinkClaim, **values: object) -> Response:
    defaults: dict[str, object] = {"state": None, "emails": [], "message": "", "done": False}
    return dash.html(request, "trash_link.html", status_code, session=None, claim=claim, **{**defaults, **values})


async def _state(dash: Dashboard, request_id: str) -> TrashState | None:
    try:
        return await dash.app.trash.status(request_id)
    except MailgateError:
        return None


async def show(dash: Dashboard, request: Request, claim: LinkClaim) -> Response:
    state = await _state(dash, claim.send_id)
    if state is None:
        gone = "This trash request no longer exists, or mailgate's worker did not answer; try again in a moment."
        return _page(dash, request, 404, claim, message=gone)

    # What the approver decides on: each email's sender and subject, not only its id.
    return _page(dash, request, 200, claim, state=state, emails=await trash_emails(dash.app.inbox, state))


def refused(dash: Dashboard, request: Request, claim: LinkClaim, message: str) -> Response:
    return _page(dash, request, 403, claim, message=message)


async def decide(dash: Dashboard, request: Request, claim: LinkClaim, reason: str | None) -> Response:
    try:
        outcome = await dash.app.trash.signal_decision(claim.send_id, claim.decision_for(reason))
    except MailgateError as exc:
        return _page(dash, request, exc.http_status, claim, message=str(exc))
    if outcome == "duplicate":
        return _page(dash, request, 409, claim, message="This link was already used; it works only once.")
    # Wait briefly for the worker to carry it out, to say what happened.
    deadline = time.monotonic() + SETTLE_SECONDS
    state = await _state(dash, claim.send_id)
    while time.monotonic() < deadline and (state is None or state.status in ("pending_approval", "trashing")):
        await asyncio.sleep(0.1)
        state = await _state(dash, claim.send_id)
    return _page(dash, request, 200, claim, state=state, done=True)
