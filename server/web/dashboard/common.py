"""What every dashboard page shares: the session check, CSRF on forms, flash messages, rendering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from server.app import Mailgate
from server.deciders import refusal
from server.errors import Forbidden, MailgateError, NotFound
from server.identities import Person
from server.web.bodies import TooLarge, read_form
from server.web.dashboard.render import environment
from server.web.sessions import Session, SessionCodec, csrf_matches

FLASH_COOKIE = "mailgate_flash"
# Defence in depth under the escaping and sanitizing: no inline script, nothing from elsewhere,
# no framing, and no Referer to other sites that could carry a one-click link's token
# ("no-referrer" would also make Chromium send "Origin: null" on our own forms).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Ctx:
    """One request to a signed-in page."""

    app: Mailgate
    codec: SessionCodec
    request: Request
    session: Session
    form: FormData = field(default_factory=FormData)
    # The signed-in person; None for an admin-token session (break glass: every mailbox).
    person: Person | None = None

    def sees(self, mailbox: str) -> bool:
        return self.person is None or self.person.can_see(mailbox)

    def check_sees(self, mailbox: str) -> None:
        if not self.sees(mailbox):
            raise NotFound(f"mailbox {mailbox} not found or not yours")

    def check_admin(self) -> None:
        if self.person is not None and not self.person.admin:
            raise Forbidden("only an admin may do this")

    async def refusal(self, mailbox: str, requester: str | None = None) -> str | None:
        if self.person is None:
            return None  # the admin token; the workflow still checks the mailbox's approvers list
        return await refusal(self.app, self.person, mailbox, requester)

    async def may_decide(self, mailbox: str, requester: str | None = None) -> bool:
        return await self.refusal(mailbox, requester) is None

    async def check_decides(self, mailbox: str, requester: str | None = None) -> None:
        self.check_sees(mailbox)
        refused = await self.refusal(mailbox, requester)
        if refused is not None:
            raise Forbidden(refused)


class Dashboard:
    def __init__(self, app: Mailgate, codec: SessionCodec) -> None:
        self.app = app
        self.codec = codec
        self.env = environment()

    def html(self, request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        raw = request.cookies.get(FLASH_COOKIE)
        flash = self.codec.read_flash(raw) if raw else None
        body = self.env.get_template(template).render(
            request=request, flash=flash, settings=self.app.settings, **values
        )
        response = HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
        if raw:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def page(self, ctx: Ctx, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        return self.html(ctx.request, template, status_code, session=ctx.session, **values)

    def error(self, request: Request, session: Session | None, status: int, message: str) -> HTMLResponse:
        return self.html(request, "error.html", status, session=session, status=status, message=message)

    def redirect(self, request: Request, url: str, kind: str = "", message: str = "") -> Response:
        response = RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
        if message:
            self.codec.set_cookie(response, request, FLASH_COOKIE, self.codec.flash(kind, message), max_age=60)
        return response

    def view(
        self, handler: Callable[[Ctx], Awaitable[Response]], activity: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        """A signed-in page: GET renders, POST must carry the session's CSRF token.

        A page a person opens or a form they send is activity and keeps the session from idling
        out; background polling (``activity=False``) is not.
        """

        async def run(request: Request) -> Response:
            session = self.codec.read(request)
            if session is None:
                if request.method == "GET":
                    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"/signin?next={quote(here, safe='/')}", status_code=303)
                return self.error(request, None, 401, "You are not signed in (or your session ended). Sign in again.")
            ctx = Ctx(self.app, self.codec, request, session)
            if session.person:
                ctx.person = await asyncio.to_thread(self.app.identities.person, session.name)
                if ctx.person is None:  # removed since: their sessions end with them
                    return self.error(request, None, 401, "Your account was removed; ask an admin.")
            if request.method == "POST":
                try:
                    ctx.form = await read_form(request)
                except TooLarge as exc:
                    return self.error(request, session, 413, str(exc))
                if not csrf_matches(session.csrf, ctx.form.get("csrf")):
                    return self.error(
                        request,
                        session,
                        403,
                        "This form is missing its security token (CSRF), so nothing was changed. "
                        "Reload the page and try again.",
                    )
            try:
                response = await handler(ctx)
            except MailgateError as exc:
                response = self.error(request, session, exc.http_status, str(exc))
            if activity:
                self.codec.touch(session, request, response)
            return response

        return run
