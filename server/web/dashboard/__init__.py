"""The approval dashboard at /: server-rendered pages, usable without JavaScript."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from server.app import Mailgate
from server.web import links, oidc_signin
from server.web.dashboard import approvals, auth, oversight, sandbox, trash
from server.web.dashboard.common import Dashboard
from server.web.dashboard.render import STATIC
from server.web.sessions import SessionCodec


def routes(app: Mailgate) -> list[BaseRoute]:
    dash = Dashboard(app, SessionCodec(app.secrets, app.settings))
    return [
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        *auth.routes(dash),
        *oidc_signin.routes(dash),
        *approvals.routes(dash),
        *oversight.routes(dash),
        *sandbox.routes(dash),
        *trash.routes(dash),
        *links.routes(dash),
    ]
