"""People sign in to the dashboard with email and password and see and decide only their mailboxes."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.async_api import Browser, Page

from server.identities import NewPerson
from tests.support.web import Web

pytestmark = pytest.mark.browser


async def signed_in(browser: Browser, web: Web, person: NewPerson, password: str | None = None) -> Page:
    context = await browser.new_context(base_url=web.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await page.goto("/signin")
    form = page.locator("#person-signin")
    await form.locator("input[name=email]").fill(person.email)
    await form.locator("input[name=password]").fill(password or person.password)
    await form.locator("button[type=submit]").click()
    return page


async def test_two_people_each_see_and_decide_only_their_own(browser: Browser, web: Web) -> None:
    tag = uuid.uuid4().hex[:8]
    sales, finance = f"sales-{tag}@mailgate.local", f"finance-{tag}@mailgate.local"
    for box in (sales, finance):
        await web.app.mailboxes.create(box, created_by="test")
    ann = web.app.identities.add_person(f"ann-{tag}@example.com", approves=[sales])
    bob = web.app.identities.add_person(f"bob-{tag}@example.com", approves=[finance])
    rev = web.app.identities.add_person(f"rev-{tag}@example.com", reviews=[sales])
    ours = await web.app.sends.submit(mailbox=sales, to=["c@example.com"], subject=f"Sales {tag}", body="b")
    theirs = await web.app.sends.submit(mailbox=finance, to=["c@example.com"], subject=f"Finance {tag}", body="b")

    wrong = await signed_in(browser, web, ann, password="not-her-password")
    assert "do not match" in await wrong.inner_text(".flash.error")
    await wrong.context.close()

    a = await signed_in(browser, web, ann)
    await a.wait_for_url(re.compile(r"/$"))
    listing = await a.inner_text("main")
    assert f"Sales {tag}" in listing and f"Finance {tag}" not in listing
    await a.goto(f"/sends/{theirs.send_id}")
    assert "not found or not yours" in await a.inner_text("main")
    await a.goto(f"/sends/{ours.send_id}")
    await a.locator("#decide button.approve").click()
    await a.wait_for_url(re.compile(r"/(\?.*)?$"))
    state = await web.app.sends.status(ours.send_id)
    assert state.decision is not None and state.decision.approver == ann.email

    # Her own agent's send: she approves the mailbox, but gets no buttons for it.
    helper = web.app.identities.add_agent(f"helper-{tag}", mailboxes=[sales], owner=ann.email)
    own = await web.app.sends.submit(
        mailbox=sales, to=["c@example.com"], subject=f"Own {tag}", body="b", requester=helper.name
    )
    await a.goto(f"/sends/{own.send_id}")
    assert f"Own {tag}" in await a.inner_text("main")
    assert await a.locator("button.approve").count() == 0

    b = await signed_in(browser, web, bob)
    await b.goto(f"/sends/{theirs.send_id}")
    await b.locator("#decide textarea[name=reason]").fill("Not this quarter.")
    await b.locator("#decide button.reject").click()
    await b.wait_for_url(re.compile(r"/(\?.*)?$"))
    state = await web.app.sends.status(theirs.send_id)
    assert state.status == "rejected" and state.decision is not None and state.decision.approver == bob.email

    # A reviewer of the mailbox sees its sends but gets no buttons, and the API refuses them.
    third = await web.app.sends.submit(mailbox=sales, to=["c@example.com"], subject=f"Third {tag}", body="b")
    r = await signed_in(browser, web, rev)
    await r.goto(f"/sends/{third.send_id}")
    assert f"Third {tag}" in await r.inner_text("main")
    assert await r.locator("button.approve").count() == 0
    assert await r.locator("button.reject").count() == 0
    async with httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {rev.api_token}"}) as api:
        assert (await api.post(f"/api/approvals/{third.send_id}/approve", json={})).status_code == 403

    # Sign-out ends the session: the cookie stops working even if copied.
    cookie = next(c for c in await a.context.cookies() if c["name"] == "mailgate_session")
    await a.goto("/")
    await a.click("button:has-text('Sign out')")
    await a.wait_for_url(re.compile(r"/signin"))
    async with httpx.AsyncClient(base_url=web.url, cookies={"mailgate_session": cookie["value"]}) as stolen:
        assert "/signin" in (await stolen.get("/", follow_redirects=False)).headers.get("location", "")
    for page in (a, b, r):
        await page.context.close()
