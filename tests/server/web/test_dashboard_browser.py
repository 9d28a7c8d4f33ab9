"""The dashboard in a real browser: Debian's chromium driven by playwright, against real Temporal."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page

from server.app import Mailgate
from server.settings import MailboxEntry
from tests.support.app import unique_mailbox
from tests.support.browser import REVIEWER, home, shot, sign_in
from tests.support.wait import wait_for_notice, wait_for_status
from tests.support.web import Web
from workflows.models import DeliveryRequest
from workflows.providers.sandbox.viewer import stored_messages

pytestmark = pytest.mark.browser


async def pending(
    app: Mailgate, subject: str, body: str = "Hello,\n\nthe report is attached.\n\nAgent", **extra: object
) -> str:
    fields: dict[str, object] = {"mailbox": app.settings.default_mailbox, "to": ["bob@example.com"], **extra}
    result = await app.sends.submit(subject=subject, body=body, **fields)  # type: ignore[arg-type]
    return result.send_id


async def test_sign_in_shows_pending_sends_oldest_first_with_the_count_in_the_title(page: Page, web: Web) -> None:
    first = await pending(
        web.app, "Invoice 2024-117 for Acme", to=["billing@acme.example", "Jo Smith <jo@acme.example>"]
    )
    second = await pending(web.app, "Follow-up on yesterday's call", cc=["sales@example.com"])
    await page.goto("/signin")
    await shot(page, "signin")
    await page.fill("input[name=name]", REVIEWER)
    await page.fill("input[name=token]", "not-the-token-0123456789")
    await page.click("button[type=submit]")
    assert "not the admin token" in (await page.inner_text(".flash.error"))
    await sign_in(page, web)
    assert (await page.title()).startswith("(2) Pending approvals")
    links = await page.locator("a.subject").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert links == [f"/sends/{first}", f"/sends/{second}"]
    assert "Signed in as" in await page.inner_text(".who")
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["mailgate_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert session["secure"] is False  # plain http here; see the TLS test for Secure
    await shot(page, "pending")

    await page.click("button:has-text('Sign out')")
    await page.wait_for_url(re.compile(r"/signin"))
    await page.goto("/")
    assert "/signin" in page.url


async def test_approve_from_the_send_page(page: Page, web: Web) -> None:
    send_id = await pending(web.app, "Welcome aboard", to=["Ann Lee <ann@example.com>"], cc=["hr@example.com"])
    await sign_in(page, web)
    await page.click("a.subject")
    await page.wait_for_url(f"**/sends/{send_id}")
    text = await page.inner_text("main")
    for expected in (
        "Welcome aboard",
        "Ann Lee",  # the name and the address apart
        "ann@example.com",
        "hr@example.com",
        "gated_send",
        "agent",
        "requested",
    ):
        assert expected in text
    await shot(page, "send")
    await page.click("button:has-text('Approve and send')")
    await page.wait_for_url(f"**{home(web)}")
    assert "Approved" in await page.inner_text(".flash.ok")
    state = await wait_for_status(web.app, send_id, ["sent"])
    assert state.decision is not None
    assert (state.decision.approver, state.decision.channel) == (REVIEWER, "dashboard")
    await page.goto(f"/sends/{send_id}")
    assert "sent" in await page.inner_text(".badge")
    await shot(page, "send-sent")
    await page.goto(f"/sandbox?mailbox={web.app.settings.default_mailbox}")
    assert "Welcome aboard" in await page.inner_text("main")
    await shot(page, "sandbox")
    await page.goto("/mailboxes")
    assert web.app.settings.default_mailbox in await page.inner_text("main")
    await shot(page, "mailboxes")


async def test_reject_with_a_reason(page: Page, web: Web) -> None:
    send_id = await pending(web.app, "Discount offer: 90% off everything")
    await sign_in(page, web)
    await page.goto(f"/sends/{send_id}")
    await page.fill("textarea[name=reason]", "We never offer more than 20%.")
    await page.click("button:has-text('Reject')")
    await page.wait_for_url(f"**{home(web)}")
    state = await wait_for_status(web.app, send_id, ["rejected"])
    assert state.reason == "We never offer more than 20%."
    assert state.decision is not None
    assert state.decision.approver == REVIEWER
    await page.goto(f"/sends/{send_id}")
    assert "We never offer more than 20%." in await page.inner_text("main")
    await shot(page, "send-rejected")


async def test_edit_then_approve_shows_the_difference_and_delivers_the_edited_email(page: Page, web: Web) -> None:
    send_id = await pending(web.app, "Meeting tmorrow", body="Hi Bob,\n\nsee you at 10.\n\nAgent")
    await sign_in(page, web)
    await page.goto(f"/sends/{send_id}")
    await page.click("summary:has-text('Change the subject')")
    await page.fill("input[name=subject]", "Meeting tomorrow at 10:30")
    await page.fill("textarea[name=body]", "Hi Bob,\n\nsee you at 10:30 in room 4.\n\nAgent")
    await page.fill("textarea[name=cc]", "Carol <carol@example.com>")
    await page.click("button:has-text('Review changes')")
    await page.wait_for_url(f"**/sends/{send_id}/preview")
    removed = await page.locator(".diff .del").all_inner_texts()
    added = await page.locator(".diff .add").all_inner_texts()
    assert any("Meeting tmorrow" in line for line in removed)
    assert any("Meeting tomorrow at 10:30" in line for line in added)
    assert any("see you at 10:30 in room 4." in line for line in added)
    assert any("carol@example.com" in line for line in added)
    assert (await web.app.sends.status(send_id)).status == "pending_approval"  # nothing decided yet
    await shot(page, "confirm-edits")
    await page.click("button:has-text('Approve with changes')")
    await page.wait_for_url(f"**{home(web)}")
    state = await wait_for_status(web.app, send_id, ["sent"])
    assert state.approved is not None
    copies = web.app.sandbox.deliveries(web.app.settings.default_mailbox)
    assert sorted((c.recipient, c.subject) for c in copies) == [
        ("bob@example.com", "Meeting tomorrow at 10:30"),
        ("carol@example.com", "Meeting tomorrow at 10:30"),
    ]
    [sent] = [m for m in stored_messages(web.app.sandbox, web.app.settings.default_mailbox) if m.folder == "sent"]
    assert b"see you at 10:30 in room 4." in sent.raw
    assert b"see you at 10.\n" not in sent.raw.replace(b"\r\n", b"\n")


async def test_bulk_approve_of_selected_sends(page: Page, web: Web) -> None:
    ids = [await pending(web.app, f"Weekly digest #{n}") for n in range(3)]
    await sign_in(page, web)
    for send_id in ids[:2]:
        await page.check(f'input[name=send_id][value^="{send_id}:"]')
    await shot(page, "bulk-selected")
    await page.click("button:has-text('Approve selected')")
    await page.wait_for_url(f"**{home(web)}")
    assert "Approved 2 of 2" in await page.inner_text(".flash")
    for send_id in ids[:2]:
        await wait_for_status(web.app, send_id, ["sent"])
    assert (await web.app.sends.status(ids[2])).status == "pending_approval"
    # The page polls for changes and keeps its title's count current.
    await page.wait_for_function("document.title.startsWith('(1) ')", timeout=15_000)


async def test_forged_posts_without_the_csrf_token_are_refused(page: Page, web: Web) -> None:
    send_id = await pending(web.app, "Wire transfer instructions")
    await sign_in(page, web)
    # From the dashboard's own origin, with the session cookie, but no token.
    status = await page.evaluate(
        """id => fetch('/sends/' + id + '/approve', {method: 'POST',
            body: new URLSearchParams({reason: 'forged'})}).then(r => r.status)""",
        send_id,
    )
    assert status == 403
    wrong = await page.evaluate(
        """id => fetch('/sends/' + id + '/approve', {method: 'POST',
            body: new URLSearchParams({csrf: 'guessed', reason: 'forged'})}).then(r => r.status)""",
        send_id,
    )
    assert wrong == 403
    # From another page that posts a form at the dashboard.
    await page.goto("about:blank")
    await page.set_content(
        f'<form method="post" action="{web.url}/sends/{send_id}/approve"><input name="reason" value="x"></form>'
    )
    async with page.expect_navigation() as navigation:
        await page.evaluate("document.forms[0].submit()")
    response = await navigation.value
    assert response is not None
    assert response.status in (401, 403)
    await page.goto(f"/sends/{send_id}")
    assert (await web.app.sends.status(send_id)).status == "pending_approval"


async def test_script_and_onerror_payloads_are_shown_as_text_and_never_run(page: Page, web: Web) -> None:
    subject = "<script>window.__pwned='subject'</script> <img src=x onerror=\"window.__pwned='subject-img'\">"
    body = (
        "<p>Dear customer,</p><script>window.__pwned='body';alert('body')</script>"
        "<img src=x onerror=\"window.__pwned='img';alert('img')\">"
        '<a href="javascript:window.__pwned=\'href\'">click</a><p onclick="window.__pwned=1">Regards</p>'
    )
    send_id = await pending(web.app, subject, body=body)
    await sign_in(page, web)
    assert subject in await page.inner_text("a.subject")
    await page.goto(f"/sends/{send_id}")
    assert await page.evaluate("window.__pwned") is None
    assert page.dialogs == []  # type: ignore[attr-defined]
    assert subject in await page.inner_text("h1")
    # The body goes out as text/plain, so it is shown as text: every tag as written, none rendered.
    assert await page.inner_text("pre.body") == body + "\n"
    assert await page.locator(".body.html").count() == 0
    assert await page.locator("main a:has-text('click')").count() == 0
    await shot(page, "inert-payloads")


async def test_a_one_click_link_approves_once_and_refuses_the_second_use(
    page: Page, web: Web, outbox: list[DeliveryRequest]
) -> None:
    app = web.app
    boss = "boss@example.com"  # outside mailgate: an agent cannot read this inbox
    mailbox = unique_mailbox("sales")
    await app.mailboxes.ensure(MailboxEntry(address=mailbox, approvers=[boss]), created_by="tests")
    result = await app.sends.submit(
        mailbox=mailbox, to=["client@example.com"], subject="Contract renewal", body="Please find the terms below."
    )
    notice = await wait_for_notice(outbox, boss)
    approve = re.search(r"Approve: (\S+)", notice.draft.body)
    reject = re.search(r"Reject:  (\S+)", notice.draft.body)
    assert approve is not None
    assert reject is not None
    assert notice.system
    assert "Contract renewal" in notice.draft.body

    await page.goto(approve.group(1))
    assert "Approve this email?" in await page.inner_text("h1")
    assert boss in await page.inner_text("main")
    await shot(page, "link-confirm")
    assert (await app.sends.status(result.send_id)).status == "pending_approval"  # opening decides nothing
    await page.click("button:has-text('Approve and send')")
    assert "Approved" in await page.inner_text("h1")
    state = await wait_for_status(app, result.send_id, ["sent"])
    assert state.decision is not None
    assert (state.decision.approver, state.decision.channel) == (boss, "link")

    again = await page.request.post(approve.group(1))
    assert again.status == 409
    assert "already used" in await again.text()
    await page.goto(reject.group(1))
    assert "Already decided" in await page.inner_text("h1")
    late = await page.request.post(reject.group(1))
    assert late.status == 409
    assert [e.kind for e in (await app.sends.status(result.send_id)).events].count("approved") == 1
    forged = approve.group(1)[:-3] + ("AAA" if not approve.group(1).endswith("AAA") else "BBB")
    await page.goto(forged)
    assert "cannot be used" in await page.inner_text("h1")
