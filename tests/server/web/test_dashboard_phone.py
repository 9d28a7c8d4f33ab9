"""Every page a person uses fits a 390-pixel phone (and a desktop), in Debian's chromium (issue 22).

Each page is rendered at 390 x 844 and 1280 x 800: no sideways scrolling, touch targets of at least
44 px on the phone, and screenshots of both sizes in test-artifacts/ (phone-*.png, desktop-*.png).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Literal

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize

from server.app import Mailgate
from server.settings import MailboxEntry
from server.validation import AttachmentInput
from tests.support.app import ADMIN_TOKEN, unique_mailbox
from tests.support.browser import ARTIFACTS
from tests.support.wait import wait_for_status
from tests.support.web import Web
from workflows.trust.links import LinkClaim, link_key, make_token

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
SIZES: dict[str, ViewportSize] = {"phone": PHONE, "desktop": DESKTOP}
# What a finger must hit on a phone; inline links inside sentences are exempt (WCAG 2.5.8).
TARGETS = (
    "button, select, textarea, input:not([type=hidden]):not([type=checkbox]), summary, "
    "label.pick, .top a, .menu-body a, .pages a, a.button, li.send a.subject"
)
LONG = "a-very-long-unbroken-local-part-that-would-push-a-table-wide." * 2


async def context_for(browser: Browser, web: Web, size: str) -> BrowserContext:
    context = await browser.new_context(
        base_url=web.url, viewport=SIZES[size], is_mobile=size == "phone", has_touch=size == "phone"
    )
    context.set_default_timeout(15_000)
    return context


async def signed_in(browser: Browser, web: Web, size: str) -> Page:
    page = await (await context_for(browser, web, size)).new_page()
    await page.goto("/signin")
    await page.fill("input[name=name]", "Pat Phone")
    await page.fill("input[name=token]", ADMIN_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"/$|/\?"))
    return page


async def check_fits(page: Page, name: str, size: str) -> None:
    """No sideways scrolling; on the phone every control is finger-sized. Screenshot either way."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{size}-{name}.png"), full_page=True)
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{name} at {size}: {widths[0]} px wide in a {widths[1]} px window"
    # A phone browser zooms out to fit a page that is too wide, which widens innerWidth with it.
    assert widths[1] == SIZES[size]["width"], f"{name} at {size}: zoomed out to {widths[1]} px to fit"
    if size != "phone":
        return
    small = await page.evaluate(
        """selector => [...document.querySelectorAll(selector)]
            .filter(e => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
            .map(e => [e.outerHTML.slice(0, 80), e.getBoundingClientRect().height, e.getBoundingClientRect().width])
            .filter(([_, h, w]) => h < 44 || w < 44)""",
        TARGETS,
    )
    assert small == [], f"{name}: touch targets under 44 px: {small}"


async def some_of_everything(app: Mailgate) -> dict[str, str]:
    """A pending send with every kind of detail, a reviewed send, an upgrade request, held mail."""
    box = app.settings.default_mailbox
    wide = await app.sends.submit(
        mailbox=box,
        to=[f"Jo Smith <{LONG[:60]}@example.com>", "billing@acme.example"],
        cc=["Carol Finance <carol@example.com>"],
        bcc=["Hidden Watcher <watcher@elsewhere.example>"],
        subject="Quarterly-report-" + "x" * 80,
        body="Hello,\n\nthe numbers: https://reports.example.com/" + "q" * 150 + "\n\nAgent",
        attachments=[
            AttachmentInput(
                filename="report-" + "long" * 20 + ".pdf",
                content_type="application/pdf",
                content_base64=base64.b64encode(b"%PDF-1.4").decode(),
            )
        ],
    )
    monitored = unique_mailbox("watched")
    await app.mailboxes.create(monitored, created_by="tests", mode="monitored")
    review = await app.sends.submit(mailbox=monitored, to=["someone@example.com"], subject="Status", body="ok")
    await wait_for_status(app, review.send_id, ["sent"])
    await app.mailboxes.request_upgrade(monitored, "autonomous", "many routine mails " * 5, requested_by="agent")
    held = EmailMessage()
    held["From"] = f"Stranger <{LONG[:60]}@example.com>"
    held["To"] = box
    held["Subject"] = "Held for a human " + "y" * 80
    held["Message-ID"] = f"<held-{datetime.now(UTC).timestamp()}@example.com>"
    held.set_content("plain part with a long line " + "z" * 200)
    app.sandbox.deliver(held.as_bytes(), "stranger@example.com", [box], held_for=[box])
    return {"send": wide.send_id}


async def test_every_page_fits_a_phone_and_a_desktop(browser: Browser, web: Web) -> None:
    made = await some_of_everything(web.app)
    send_id = made["send"]
    for size in SIZES:
        anonymous = await (await context_for(browser, web, size)).new_page()
        await anonymous.goto("/signin")
        await check_fits(anonymous, "signin", size)
        await anonymous.context.close()

        page = await signed_in(browser, web, size)
        pages = {
            "pending": "/",
            "send": f"/sends/{send_id}",
            "reviews": "/reviews",
            "upgrades": "/upgrades",
            "inbound": "/inbound",
            "mailboxes": "/mailboxes",
            "sandbox": "/sandbox",
        }
        for name, path in pages.items():
            await page.goto(path, timeout=60_000)
            await check_fits(page, name, size)
        row = await page.locator("a[href^='/sandbox/messages/']").first.get_attribute("href")
        assert row is not None
        await page.goto(row)
        await check_fits(page, "sandbox-message", size)

        # Edit, then confirm: the diff and the edited email fit too.
        await page.goto(f"/sends/{send_id}")
        await page.locator("summary:has-text('Change the subject')").click()
        await page.fill("input[name=subject]", "Quarterly report, checked")
        await page.locator("button:has-text('Review changes')").click()
        await page.wait_for_url(f"**/sends/{send_id}/preview")
        await check_fits(page, "confirm-edits", size)

        # Loosening a mode asks once more; a refusal has its own page.
        await page.goto("/mailboxes")
        form = page.locator(f"form[action='/mailboxes/{web.app.settings.default_mailbox}/mode']")
        await form.locator("select[name=mode]").select_option("autonomous")
        await form.locator("button[type=submit]").click()
        assert "Loosen" in await page.inner_text("h1")
        await check_fits(page, "confirm-mode", size)
        await page.goto("/sandbox/messages/999999")
        await check_fits(page, "error", size)

        if size == "phone":
            # The menu folds the navigation away, and opens without any script.
            await page.goto("/")
            assert not await page.locator("nav.wide").is_visible()
            assert not await page.locator(".menu-body a:has-text('Mailboxes')").is_visible()
            await page.locator(".menu summary").click()
            await check_fits(page, "menu-open", size)
            await page.locator(".menu-body a:has-text('Mailboxes')").click()
            await page.wait_for_url("**/mailboxes")
        await page.context.close()


async def test_approve_and_reject_are_in_reach_on_a_phone_sized_send_page(browser: Browser, web: Web) -> None:
    app = web.app
    body = "\n".join(f"Line {n} of a long email that fills more than a phone screen." for n in range(120))
    approve_id = (
        await app.sends.submit(
            mailbox=app.settings.default_mailbox, to=["a@example.com"], subject="Long one", body=body
        )
    ).send_id
    reject_id = (
        await app.sends.submit(
            mailbox=app.settings.default_mailbox, to=["b@example.com"], subject="Long two", body=body
        )
    ).send_id
    page = await signed_in(browser, web, "phone")

    await page.goto(f"/sends/{approve_id}")
    for control in (".decision-bar button.approve", ".decision-bar a.reject"):
        box = await page.locator(control).bounding_box()
        assert box is not None, control
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], (control, box)  # no scrolling
        assert box["height"] >= 44
    await check_fits(page, "send-decision-bar", "phone")
    await page.screenshot(path=str(ARTIFACTS / "phone-send-as-first-seen.png"))
    await page.locator(".decision-bar button.approve").click(no_wait_after=False)
    await page.wait_for_url(re.compile(r"/\?mailbox="))
    state = await wait_for_status(app, approve_id, ["sent"])
    assert state.decision is not None and state.decision.channel == "dashboard"

    await page.goto(f"/sends/{reject_id}")
    await page.locator(".decision-bar a.reject").click()
    reason = page.locator("#reject-reason")
    assert await reason.is_visible()
    await reason.fill("Too long for a customer.")
    await page.locator("#decide button.reject").click()
    await page.wait_for_url(re.compile(r"/\?mailbox="))
    state = await wait_for_status(app, reject_id, ["rejected"])
    assert state.reason == "Too long for a customer."
    await page.context.close()


async def test_one_click_links_approve_and_reject_on_a_phone_and_a_desktop(browser: Browser, web: Web) -> None:
    app = web.app
    boss = "boss@example.com"
    mailbox = unique_mailbox("sales")
    await app.mailboxes.ensure(MailboxEntry(address=mailbox, approvers=[boss]), created_by="tests")
    body = (
        "Dear client,\n\n" + "Here are the renewal terms, clause by clause.\n" * 60 + "https://x.example/" + "t" * 120
    )
    key = link_key(app.secrets.secret_key)

    def link(send_id: str, decision: Literal["approve", "reject"]) -> str:
        """The link a notice carries (minted here: this tests the page, not how notices travel)."""
        claim = LinkClaim(
            send_id=send_id, decision=decision, approver=boss, expires=int(time.time()) + 3600, nonce=uuid.uuid4().hex
        )
        return f"/links/{make_token(key, claim)}"

    for size in SIZES:
        approved, rejected = [
            (await app.sends.submit(mailbox=mailbox, to=["client@example.com"], subject=f"Renewal {n}", body=body))
            for n in (f"{size} A", f"{size} B")
        ]
        page = await (await context_for(browser, web, size)).new_page()
        await page.goto(link(approved.send_id, "approve"))
        assert "Approve this email?" in await page.inner_text("h1")
        await check_fits(page, "link-approve", size)
        assert (await app.sends.status(approved.send_id)).status == "pending_approval"  # opening decides nothing
        button = page.locator("button:has-text('Approve and send')")
        box = await button.bounding_box()
        assert box is not None and box["y"] + box["height"] <= SIZES[size]["height"]  # in view, long body or not
        await button.click()
        assert "Approved" in await page.inner_text("h1")
        await check_fits(page, "link-approved", size)
        state = await wait_for_status(app, approved.send_id, ["sent"])
        assert state.decision is not None and (state.decision.approver, state.decision.channel) == (boss, "link")

        await page.goto(link(rejected.send_id, "reject"))
        await check_fits(page, "link-reject", size)
        await page.fill("textarea[name=reason]", "Terms changed since.")
        await page.locator("button:has-text('Reject')").click()
        assert "Rejected" in await page.inner_text("h1")
        await check_fits(page, "link-rejected", size)
        state = await wait_for_status(app, rejected.send_id, ["rejected"])
        assert state.decision is not None and state.decision.approver == boss
        assert state.reason == "Terms changed since."

        await page.goto(link(approved.send_id, "reject"))  # another link of a decided send
        assert "Already decided" in await page.inner_text("h1")
        await check_fits(page, "link-already-decided", size)
        await page.goto(link(approved.send_id, "approve")[:-3] + "AAA")
        assert "cannot be used" in await page.inner_text("h1")
        await check_fits(page, "link-refused", size)
        await page.context.close()
