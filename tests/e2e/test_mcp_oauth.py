"""OAuth 2.1 on /mcp against a real `mailgate serve` and a real authorization server.

The MCP SDK's own OAuth client (client credentials) finds the authorization server from
mailgate's 401 and protected resource metadata (RFC 9728), gets a JWT access token for
mailgate's resource URL (RFC 8707) and uses it; the token's subject is an agent made with
`mailgate agents add`, whose mailboxes are all it reaches. Forged, expired and wrong-audience
tokens, and tokens naming no agent here, are refused with a challenge that names the metadata.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import httpx2
from joserfc.jwk import RSAKey
from mcp import Client
from mcp.client.auth import TokenStorage
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from tests.support.peers.oidc_server import OIDCPeer
from tests.support.serve import Serve

SEND = {"to": ["b@example.com"], "subject": "Quarterly numbers", "body": "Attached."}


class Memory(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def test_agents_reach_mcp_with_oauth_access_tokens(serve: Serve) -> None:
    idp = OIDCPeer().start()
    resource = f"{serve.url}/mcp"
    serve.extra_env.update(MAILGATE_MCP_OAUTH_ISSUER=idp.url)  # the resource: http://HOST:PORT/mcp
    try:
        serve.start()
        support, finance = "support@mailgate.local", "finance@mailgate.local"
        for box in (support, finance):
            assert serve.cli("mailbox", "create", box).returncode == 0
        serve.made("agents", "add", "helper", "--mailbox", support)
        secret = idp.add_agent_client("helper")
        ghost_secret = idp.add_agent_client("ghost")  # known to the authorization server, no agent here

        # Unauthenticated: a challenge naming the metadata, which names the authorization server.
        async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
            bare = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert bare.status_code == 401
            challenge = bare.headers["www-authenticate"]
            metadata_url = f"{serve.url}/.well-known/oauth-protected-resource/mcp"
            assert f'resource_metadata="{metadata_url}"' in challenge
            metadata = (await http.get(metadata_url)).json()
            assert metadata["resource"] == resource
            assert [a.rstrip("/") for a in metadata["authorization_servers"]] == [idp.url]

        provider = ClientCredentialsOAuthProvider(
            server_url=resource, storage=Memory(), client_id="helper", client_secret=secret, issuer=idp.url
        )
        http2 = httpx2.AsyncClient(auth=provider, timeout=30)
        async with Client(streamable_http_client(resource, http_client=http2)) as client:
            listed = await client.call_tool("list_mailboxes", {})
            assert listed.structured_content is not None, listed.content
            assert [m["address"] for m in listed.structured_content["mailboxes"]] == [support]
            assert (await client.call_tool("durable_send", {"mailbox": finance, **SEND})).is_error
            sent = await client.call_tool("durable_send", {"mailbox": support, **SEND})
            assert sent.structured_content is not None, sent.content
        shown = serve.cli("sends", "show", sent.structured_content["send_id"], "--json")
        assert shown.returncode == 0 and '"requester": "helper"' in shown.stdout

        async def token(client_id: str, client_secret: str, audience: str) -> str:
            async with httpx.AsyncClient(timeout=30) as http:
                answer = await http.post(
                    f"{idp.url}/token",
                    data={"grant_type": "client_credentials", "scope": "mailgate", "resource": audience},
                    auth=(client_id, client_secret),
                )
            assert answer.status_code == 200, answer.text
            value: str = answer.json()["access_token"]
            return value

        now = int(time.time())
        claims: dict[str, Any] = {"iss": idp.url, "sub": "helper", "aud": resource, "exp": now + 300, "iat": now}
        forger = RSAKey.generate_key(2048, parameters={"kid": str(idp.key.kid)}, private=True)
        refused = {
            "forged": idp.sign(claims, key=forger),
            "expired": idp.sign({**claims, "exp": now - 600}),
            "wrong audience": await token("helper", secret, "http://127.0.0.1:1/mcp"),
            "no agent here": await token("ghost", ghost_secret, resource),
        }
        good = await token("helper", secret, resource)
        async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
            call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            for name, value in refused.items():
                answer = await http.post("/mcp", json=call, headers={"Authorization": f"Bearer {value}"})
                assert answer.status_code == 401, name
                assert "resource_metadata=" in answer.headers["www-authenticate"], name
            # An agent's OAuth token is for /mcp only: the approver API refuses it.
            api = await http.get("/api/approvals", headers={"Authorization": f"Bearer {good}"})
            assert api.status_code == 401
    finally:
        idp.stop()
