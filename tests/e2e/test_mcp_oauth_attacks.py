"""OAuth on /mcp as an attacker tries it, against a real `mailgate serve` and authorization server.

A token is an agent's only if its claim names that agent as it is: KELVIN SIGN "K" lowercases to
"k", so a client the authorization server knows as "\u212aeeper" is not the agent "keeper".
An ID token the provider made for the dashboard's single sign-on is not an access token here.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.support.peers.oidc_server import OIDCPeer
from tests.support.serve import Serve

pytestmark = pytest.mark.e2e


async def test_only_a_token_naming_the_agent_as_it_is_reaches_mcp(serve: Serve) -> None:
    idp = OIDCPeer().start()
    resource = f"{serve.url}/mcp"
    serve.extra_env.update(MAILGATE_MCP_OAUTH_ISSUER=idp.url)
    try:
        serve.start()
        serve.made("agents", "add", "keeper")
        now = int(time.time())
        claims: dict[str, Any] = {"iss": idp.url, "sub": "keeper", "aud": resource, "exp": now + 300, "iat": now}
        refused = {
            "lookalike subject": idp.sign({**claims, "sub": "\u212aeeper"}),
            "dashboard ID token": idp.sign({**claims, "aud": idp.dashboard_id, "email": "a@example.com"}),
        }
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        headers = {"accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
            for name, value in refused.items():
                answer = await http.post("/mcp", json=call, headers={**headers, "Authorization": f"Bearer {value}"})
                assert answer.status_code == 401, name
            good = idp.sign(claims)
            answer = await http.post("/mcp", json=call, headers={**headers, "Authorization": f"Bearer {good}"})
            assert answer.status_code != 401, answer.text
    finally:
        idp.stop()
