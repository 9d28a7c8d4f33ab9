"""Single sign-on as an attacker tries it, in chromium against a real provider (tests/peers/oidc_server.py).

- An identity provider that lets anyone register an address it never verified, and says so
  with ``email_verified: "false"`` (a string, as some providers send it) or says nothing, must
  not sign that someone in as the person whose address it is.
- An address that only Unicode lowercasing makes a person's (KELVIN SIGN "K" lowercases to "k")
  is not that person.
- A sign-in link's ``next`` that a browser reads as another site ("/<TAB>/host": browsers drop
  tabs) must not send the person there once signed in, where a copy of the sign-in page waits.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext

from server.app import Mailgate
from server.web.dashboard.auth import _local
from tests.support.peers.oidc_server import OIDCPeer
from tests.support.web import serve_web, with_sso

pytestmark = pytest.mark.browser


async def sign_in(context: BrowserContext, idp: OIDCPeer, email: str, password: str, start: str) -> str:
    """Through the provider's form from ``start``; the text of the page the callback ends on."""
    page = await context.new_page()
    await page.goto(start)
    await page.wait_for_url(re.compile(re.escape(idp.url) + r"/authorize"))
    # The provider's own form would not take a Unicode local part (type=email); its server does.
    await page.eval_on_selector("input[name=login_email]", "e => { e.type = 'text'; }")
    await page.fill("input[name=login_email]", email)
    await page.fill("input[name=login_password]", password)
    await page.click("#idp-signin button[type=submit]")
    # The callback's page, or wherever it already moved on to.
    await page.wait_for_url(lambda url: not url.startswith(idp.url + "/authorize"))
    await page.wait_for_load_state()
    return await page.inner_text("body")


async def signed_in(context: BrowserContext) -> bool:
    return any(c["name"] == "mailgate_session" for c in await context.cookies())


@pytest.mark.parametrize(
    "verified",
    ["false", None, "no", 0],
    ids=["string-false", "missing", "string-no", "zero"],
)
async def test_an_email_the_provider_did_not_verify_signs_nobody_in(
    browser: Browser,
    app: Mailgate,
    idp: OIDCPeer,
    verified: Any,
) -> None:
    tag = uuid.uuid4().hex[:8]
    victim = app.identities.add_person(f"approver-{tag}@example.com")
    # The attacker registered the approver's address at the provider, which never checked it.
    idp.add_user(victim.email, "attacker's password", email_verified=verified)
    async with serve_web(with_sso(app, idp)) as web:
        context = await browser.new_context(base_url=web.url)
        context.set_default_timeout(10_000)
        text = await sign_in(context, idp, victim.email, "attacker's password", "/signin/oidc")
        assert "did not vouch for an email address" in text
        assert not await signed_in(context)
        await context.close()


async def test_an_address_that_only_unicode_lowercasing_matches_is_nobody(
    browser: Browser,
    app: Mailgate,
    idp: OIDCPeer,
) -> None:
    tag = uuid.uuid4().hex[:8]
    victim = app.identities.add_person(f"kate-{tag}@example.com")
    lookalike = "\u212a" + victim.email[1:]  # KELVIN SIGN: a different address, verified by the provider
    assert lookalike != victim.email and lookalike.lower() == victim.email
    idp.add_user(lookalike, "attacker's password")
    async with serve_web(with_sso(app, idp)) as web:
        context = await browser.new_context(base_url=web.url)
        context.set_default_timeout(10_000)
        await sign_in(context, idp, lookalike, "attacker's password", "/signin/oidc")
        assert not await signed_in(context)
        await context.close()


async def test_next_cannot_send_a_signed_in_person_to_another_site(
    browser: Browser,
    app: Mailgate,
    idp: OIDCPeer,
) -> None:
    tag = uuid.uuid4().hex[:8]
    ann = app.identities.add_person(f"ann-{tag}@example.com")
    idp.add_user(ann.email, "ann's password")
    # "Another site" is the provider's port here: any page that is not mailgate's.
    elsewhere = f"127.0.0.1:{idp.port}/phish"
    async with serve_web(with_sso(app, idp)) as web:
        context = await browser.new_context(base_url=web.url)
        context.set_default_timeout(10_000)
        await sign_in(context, idp, ann.email, "ann's password", f"/signin/oidc?next=/%09/{elsewhere}")
        page = context.pages[-1]
        await page.wait_for_url(lambda url: "/signin/oidc/callback" not in url)
        assert await signed_in(context)
        assert page.url.startswith(web.url + "/"), f"signed in, then sent to {page.url}"
        assert "phish" not in page.url
        await context.close()


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "/\t\\evil.example", "/ /x", "x"],
)
def test_next_paths_that_a_browser_reads_as_another_site_are_refused(target: str) -> None:
    assert _local(target) == "/"


def test_next_paths_on_this_site_are_kept() -> None:
    assert _local("/sends/abc?status=pending#top") == "/sends/abc?status=pending#top"
