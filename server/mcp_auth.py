"""OAuth 2.1 on /mcp: JWT access tokens from an external authorization server, beside agent tokens.

Set ``MAILGATE_MCP_OAUTH_ISSUER`` and /mcp (and /sse) also take bearer JWTs that issuer signed
for this server: signature by a key of its JWKS, issuer, expiry, and audience equal to
mailgate's resource URL (``MAILGATE_MCP_OAUTH_RESOURCE``, default ``MAILGATE_PUBLIC_URL/mcp``),
checked by a verifier of the MCP SDK's ``TokenVerifier`` kind. The token's
``MAILGATE_MCP_OAUTH_AGENT_CLAIM`` (default ``sub``: the client, for the client credentials
grant) names an agent made with `mailgate agents add`, whose mailboxes and read-only flag are
the token's scope; a name that is no agent here is refused. Protected resource metadata
(RFC 9728) names the issuer, and every 401 from /mcp points at it (``resource_metadata``).
"""

from __future__ import annotations

import logging

import anyio
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.identities import Agent, IdentityStore
from server.oidc import Issuer, IssuerError, TokenError
from server.settings import Settings

log = logging.getLogger("mailgate.mcp_auth")
SCOPES = ["mailgate"]


def resource_url(settings: Settings) -> str:
    if settings.mcp_oauth_resource:
        return settings.mcp_oauth_resource
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    return f"{base}/mcp"


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class JwtVerifier(TokenVerifier):
    """The SDK's token verifier for JWTs of one issuer, for one audience (this server's /mcp)."""

    def __init__(self, issuer: Issuer, audience: str) -> None:
        self.issuer = issuer
        self.audience = audience

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = await self.issuer.verify(token, self.audience)
        except TokenError as exc:
            log.info("an OAuth bearer token was refused: %s", exc)
            return None
        except IssuerError as exc:
            log.warning("cannot check OAuth bearer tokens now: %s", exc)
            return None
        scope = claims.get("scope")
        client = claims.get("client_id") or claims.get("azp") or claims.get("sub")
        exp = claims.get("exp")
        return AccessToken(
            token=token,
            client_id=str(client or ""),
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=exp if isinstance(exp, int) else None,
            resource=self.audience,
            subject=str(claims["sub"]) if isinstance(claims.get("sub"), str) else None,
            claims=claims,
        )


class McpOAuth:
    """What the /mcp middleware asks: which agent a JWT stands for, and how to challenge."""

    def __init__(self, settings: Settings, identities: IdentityStore) -> None:
        assert settings.mcp_oauth_issuer is not None
        self.issuer_url = settings.mcp_oauth_issuer
        self.resource = resource_url(settings)
        self.claim = settings.mcp_oauth_agent_claim
        self.verifier = JwtVerifier(Issuer(self.issuer_url), self.resource)
        self.identities = identities
        self.metadata_url = str(build_resource_metadata_url(AnyHttpUrl(self.resource)))

    async def agent(self, token: str) -> Agent | None:
        access = await self.verifier.verify_token(token)
        if access is None or not access.claims:
            return None
        name = access.claims.get(self.claim)
        if not isinstance(name, str) or not name:
            log.info("an OAuth bearer token has no %r claim to name its agent", self.claim)
            return None
        if not name.isascii():
            # Agent names are ASCII; Unicode lowercasing would make "\u212aeeper" the agent "keeper".
            log.info("an OAuth bearer token names %r, which is no agent name", name)
            return None
        agent = await anyio.to_thread.run_sync(self.identities.agent, name)
        if agent is None:
            log.info("an OAuth bearer token names %r, which is no agent here (`mailgate agents add`)", name)
        return agent

    def challenge(self, error: str, description: str) -> str:
        return f'Bearer error="{error}", error_description="{description}", resource_metadata="{self.metadata_url}"'

    def routes(self) -> list[Route]:
        # Written out, not through a URL model: clients compare the issuer byte for byte, and
        # a normalised "http://host/" for "http://host" sends them nowhere.
        metadata = {
            "resource": self.resource,
            "authorization_servers": [self.issuer_url],
            "scopes_supported": SCOPES,
            "bearer_methods_supported": ["header"],
            "resource_name": "mailgate",
        }

        async def serve_metadata(request: Request) -> Response:
            return JSONResponse(metadata, headers={"Cache-Control": "public, max-age=3600"})

        path = "/" + self.metadata_url.split("/", 3)[3]
        return [Route(path, serve_metadata, methods=["GET"])]


def from_settings(settings: Settings, identities: IdentityStore) -> McpOAuth | None:
    return McpOAuth(settings, identities) if settings.mcp_oauth_issuer else None
