"""`mailgate auth logout`: revoke the grant at the authorization server, then forget it here.

Revocation is RFC 7009: the refresh token is POSTed to the revocation endpoint (which also ends
the access tokens made from it, at Google and any server that follows section 2.1). Google has
one built in; Microsoft's identity platform has none a client may call (only an admin's Graph
``revokeSignInSessions``), so there the human removes the app's access in the account itself.
"""

from __future__ import annotations

import asyncio

import httpx

from server.settings import MailboxEntry
from workflows.providers.oauth import GrantStore, OAuthError

MICROSOFT_HINT = (
    "Microsoft has no token revocation endpoint for apps: remove mailgate's access in the account "
    "(https://myapps.microsoft.com for work or school accounts, https://account.live.com/consent/Manage "
    "for personal ones)"
)


async def revoke(entry: MailboxEntry, refresh_token: str) -> None:
    """Revoke at the server; raises OAuthError when it could not be done (nothing forgotten then)."""
    client = entry.oauth_client()
    url = client.endpoints.revocation_url
    assert url is not None
    form = {"token": refresh_token, "token_type_hint": "refresh_token", "client_id": client.client_id}
    secret = entry.oauth_secret()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            if secret:  # a confidential client authenticates (RFC 7009 section 2.1)
                response = await http.post(url, data=form, auth=(client.client_id, secret))
            else:
                response = await http.post(url, data=form)
    except httpx.HTTPError as exc:
        raise OAuthError(f"the revocation endpoint {url} did not answer: {exc}") from exc
    if response.status_code == 200:
        return
    try:
        error = str(response.json().get("error", ""))
    except ValueError:
        error = ""
    if error in ("invalid_token", "invalid_grant"):
        return  # already revoked or expired: nothing left to end
    raise OAuthError(f"the revocation endpoint {url} answered {response.status_code} {error}".rstrip())


async def logout(entry: MailboxEntry, store: GrantStore, *, local_only: bool = False) -> str:
    """What happened, in a sentence. Raises OAuthError (the grant kept) when revocation failed."""
    grant = await asyncio.to_thread(store.load, entry.address)
    if grant is None:
        return f"{entry.address}: was not logged in"
    url = entry.oauth_client().endpoints.revocation_url
    if local_only:
        done = "grant forgotten here only (not revoked at the provider: --local-only)"
    elif url is None:
        hint = MICROSOFT_HINT if entry.oauth_provider == "microsoft" else "no oauth_revocation_url is configured"
        done = f"grant forgotten here; not revoked at the provider: {hint}"
    elif not grant.refresh_token:
        done = "grant forgotten (it held no refresh token to revoke)"
    else:
        await revoke(entry, grant.refresh_token)
        done = f"grant revoked at {url} and forgotten"
    await asyncio.to_thread(store.forget, entry.address)
    return f"{entry.address}: {done}"
