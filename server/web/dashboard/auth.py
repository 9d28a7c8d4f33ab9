"""Sign-in with the admin token, and sign-out."""

from __future__ import annotations

import asyncio
import hmac
import math
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import InvalidInput
from server.validation import check_person
from server.web.bodies import TooLarge, read_form
from server.web.dashboard.common import Ctx, Dashboard
from server.web.sessions import SESSION_COOKIE, SIGNIN_COOKIE
from server.web.throttle import client_address, throttle_of


def _local(path: str) -> str:
    """Only a path on this site: a sign-in link must not bounce the user elsewhere.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so "/<TAB>/evil"
    and "/<TAB>\\evil" are "//evil", another site: no control characters, spaces or backslashes.
    """
    if not path.startswith("/") or path.startswith("//"):
        return "/"
    if "\\" in path or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in path):
        return "/"
    return path


def routes(dash: Dashboard) -> list[Route]:
    codec = dash.codec

    def form(request: Request, status: int = 200, error: str = "", name: str = "", email: str = "") -> Response:
        token = secrets.token_urlsafe(24)
        response = dash.html(
            request,
            "signin.html",
            status,
            session=None,
            csrf=token,
            error=error,
            name=name,
            email=email,
            next=_local(request.query_params.get("next", "/")),
        )
        codec.set_cookie(response, request, SIGNIN_COOKIE, token, max_age=3600)
        return response

    async def signin_page(request: Request) -> Response:
        if codec.read(request) is not None:
            return dash.redirect(request, _local(request.query_params.get("next", "/")))
        return form(request)

    async def signin(request: Request) -> Response:
        try:
            data = await read_form(request, 64 * 1024)
        except TooLarge as exc:
            return dash.error(request, None, 413, str(exc))
        expected = request.cookies.get(SIGNIN_COOKIE, "")
        given = data.get("csrf")
        if not expected or not isinstance(given, str) or not hmac.compare_digest(expected.encode(), given.encode()):
            return form(request, 403, "The sign-in form expired. Please try again.")
        if "password" in data:
            return await person_signin(request, data)
        name = str(data.get("name", ""))
        token = str(data.get("token", "")).strip()
        try:
            name = check_person(name, "name")
        except InvalidInput:
            return form(request, 400, "Enter your name or email: it is recorded with every decision you make.")
        throttle, address = throttle_of(request.scope), client_address(request.scope)
        wait = throttle.wait(address)
        if wait > 0:
            message = f"Too many failed sign-ins from your address; try again in {math.ceil(wait)} s."
            return form(request, 429, message, name)
        if not token or dash.app.secrets.role_of(token) != "admin":
            throttle.failed(address)
            return form(request, 401, "That is not the admin token.", name)
        value, session = codec.issue(name)
        response = dash.redirect(request, _local(str(data.get("next", "/"))))
        codec.set_cookie(response, request, SESSION_COOKIE, value, max_age=session.expires - session.seen)
        response.delete_cookie(SIGNIN_COOKIE, path="/")
        return response

    async def person_signin(request: Request, data: FormData) -> Response:
        email = str(data.get("email", "")).strip()[:200]
        password = str(data.get("password", ""))[:1024]
        # The same throttle as the admin token: a password guessed online costs ever more waiting.
        throttle, address = throttle_of(request.scope), client_address(request.scope)
        wait = throttle.wait(address)
        if wait > 0:
            message = f"Too many failed sign-ins from your address; try again in {math.ceil(wait)} s."
            return form(request, 429, message, email=email)
        person = await asyncio.to_thread(dash.app.identities.check_password, email, password) if email else None
        if person is None:
            throttle.failed(address)
            return form(request, 401, "That email and password do not match.", email=email)
        value, session = codec.issue(person.email, person=True)
        response = dash.redirect(request, _local(str(data.get("next", "/"))))
        codec.set_cookie(response, request, SESSION_COOKIE, value, max_age=session.expires - session.seen)
        response.delete_cookie(SIGNIN_COOKIE, path="/")
        return response

    async def signout(ctx: Ctx) -> Response:
        # Deleting the cookie is not enough: a copy of it must stop working too.
        codec.revoke(ctx.session)
        response = dash.redirect(ctx.request, "/signin", "ok", "Signed out.")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return [
        Route("/signin", signin_page, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", dash.view(signout, activity=False), methods=["POST"]),
    ]
