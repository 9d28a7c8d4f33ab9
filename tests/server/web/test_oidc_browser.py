"""Dashboard single sign-on against a real OpenID Connect provider (tests/support/peers/oidc_server.py).

Chromium follows the whole authorization code flow: mailgate's sign-in page, the provider's own
sign-in form, the callback that checks the ID token against the provider's JWKS, and the
dashboard of the person whose email the token carries. Forged, expired and wrong-audience ID
tokens, a replayed or foreign ``state`` and an email that is no person here are refused.
"""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest
from joserfc.jwk import RSAKey
from playwright.async_api import Browser

from server.app import Mailgate
from server.oidc import Issuer, TokenError
from tests.support.peers.oidc_server import OIDCPeer
from tests.support.web import Web, serve_web, with_sso

pytestmark = pytest.mark.browser


async def test_people_sign_in_through_the_identity_provider(
    browser: Browser,
    app: Mailgate,
    idp: OIDCPeer,
) -> None:
    tag = uuid.uuid4().hex[:8]
    sales, finance = f"sales-{tag}@mailgate.local", f"finance-{tag}@mailgate.local"
    for box in (sales, finance):
        await app.mailboxes.create(box, created_by="test")
    ann = app.identities.add_person(f"ann-{tag}@example.com", approves=[sales])
    idp.add_user(ann.email, "ann's idp password")
    idp.add_user(f"stranger-{tag}@example.com", "stranger's password")
    ours = await app.sends.submit(mailbox=sales, to=["c@example.com"], subject=f"Sales {tag}", body="b")
    await app.sends.submit(mailbox=finance, to=["c@example.com"], subject=f"Finance {tag}", body="b")

    async with serve_web(with_sso(app, idp)) as web:
        context = await browser.new_context(base_url=web.url, viewport={"width": 1280, "height": 860})
        context.set_default_timeout(10_000)
        page = await context.new_page()
        await page.goto("/signin")
        await page.click("#oidc-signin")
        await page.wait_for_url(re.compile(re.escape(idp.url) + r"/authorize"))
        await page.fill("input[name=login_email]", ann.email)
        await page.fill("input[name=login_password]", "ann's idp password")
        await page.click("#idp-signin button[type=submit]")
        await page.wait_for_url(re.compile(re.escape(web.url) + r"/(\?.*)?$"))
        listing = await page.inner_text("main")
        assert f"Sales {tag}" in listing and f"Finance {tag}" not in listing
        await page.goto(f"/sends/{ours.send_id}")
        await page.locator("#decide button.approve").click()
        await page.wait_for_url(re.compile(r"/(\?.*)?$"))
        state = await app.sends.status(ours.send_id)
        assert state.decision is not None and state.decision.approver == ann.email
        await page.click("button:has-text('Sign out')")
        await page.wait_for_url(re.compile(r"/signin"))
        assert await page.locator("#oidc-signin").count() == 1

        # The provider knows them, mailgate does not: no session.
        await page.click("#oidc-signin")
        await page.fill("input[name=login_email]", f"stranger-{tag}@example.com")
        await page.fill("input[name=login_password]", "stranger's password")
        await page.click("#idp-signin button[type=submit]")
        await page.wait_for_url(re.compile(r"/signin/oidc/callback"))
        assert "not a person on this mailgate" in await page.inner_text("main")
        assert not [c for c in await context.cookies() if c["name"] == "mailgate_session"]
        await context.close()

        await refused_callbacks(web)


async def refused_callbacks(web: Web) -> None:
    async with httpx.AsyncClient(base_url=web.url, timeout=30) as http:
        started = await http.get("/signin/oidc", follow_redirects=False)
        assert started.status_code == 303
        # A state that is not the one this browser was sent off with (login CSRF).
        forged = await http.get("/signin/oidc/callback?code=x&state=someone-elses", follow_redirects=False)
        assert forged.status_code == 400 and "mailgate_session" not in forged.cookies
        # No flow cookie at all.
        async with httpx.AsyncClient(base_url=web.url, timeout=30) as bare:
            assert (await bare.get("/signin/oidc/callback?code=x&state=y")).status_code == 400


async def test_id_tokens_are_checked_against_the_providers_keys(idp: OIDCPeer) -> None:
    issuer = Issuer(idp.url)
    now = int(time.time())
    good = {"iss": idp.url, "aud": idp.dashboard_id, "exp": now + 300, "iat": now, "nonce": "n", "email": "a@b.c"}
    assert (await issuer.verify(idp.sign(good), idp.dashboard_id, nonce="n"))["email"] == "a@b.c"

    other = RSAKey.generate_key(2048, parameters={"kid": str(idp.key.kid)}, private=True)
    cases = {
        "forged": idp.sign(good, key=other),
        "expired": idp.sign({**good, "exp": now - 600}),
        "wrong audience": idp.sign({**good, "aud": "someone-else"}),
        "wrong issuer": idp.sign({**good, "iss": "http://127.0.0.1:1"}),
        "replayed nonce": idp.sign({**good, "nonce": "another"}),
        "unsigned": "eyJhbGciOiJub25lIn0." + "eyJpc3MiOiJ4In0.",
    }
    for name, token in cases.items():
        try:
            await issuer.verify(token, idp.dashboard_id, nonce="n")
        except TokenError:
            continue
        pytest.fail(f"a {name} ID token was accepted")
