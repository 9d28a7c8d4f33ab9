"""The pending list shows all that bulk approval sends, pages instead of truncating, and agents
cannot flood it; the flash message cannot be planted from another port (issue 25 items 4 and 5)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import AsyncIterator

import pytest
from mcp import Client
from playwright.async_api import Browser, Page

from server.app import Mailgate
from server.mcp_server import build_mcp
from server.validation import AttachmentInput
from server.web.dashboard import approvals
from tests.support.app import ADMIN_TOKEN
from tests.support.browser import shot
from tests.support.ports import free_port
from tests.support.wait import wait_for_status
from tests.support.web import Web

pytestmark = pytest.mark.browser


@pytest.fixture
async def page(browser: Browser, web: Web) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=web.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    page = await context.new_page()
    await page.goto(f"/signin?next=/%3Fmailbox%3D{web.app.settings.default_mailbox}")
    await page.fill("input[name=name]", "Lena List")
    await page.fill("input[name=token]", ADMIN_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"/\?mailbox="))
    yield page
    await context.close()


async def test_the_list_shows_every_recipient_and_file_and_bulk_approves_only_what_it_showed(
    page: Page, web: Web
) -> None:
    app = web.app
    box = app.settings.default_mailbox
    send = await app.sends.submit(
        mailbox=box,
        to=["Jo Smith <jo@acme.example>"],
        cc=["Carol Finance <carol@example.com>"],
        bcc=["Hidden Watcher <watcher@elsewhere.example>"],
        subject="Invoice 2024-117",
        body="Please find the invoice attached.",
        attachments=[
            AttachmentInput(filename="invoice.pdf", content_type="application/pdf", content_base64="JVBERg==")
        ],
    )
    await page.reload()
    card = page.locator(f"li.send[data-send-id='{send.send_id}']")
    text = await card.inner_text()
    for shown in (
        "Jo Smith",
        "jo@acme.example",
        "Carol Finance",
        "carol@example.com",
        "Hidden Watcher",
        "watcher@elsewhere.example",
        "invoice.pdf",
    ):
        assert shown in text, shown
    assert "Bcc" in text
    await shot(page, "pending-every-recipient")

    # A selection that does not name what the list showed (a stale page, a hand-made form) is refused.
    csrf = await page.locator("form.bulk input[name=csrf]").get_attribute("value")
    assert csrf is not None
    refused = await page.request.post(
        "/bulk", form={"csrf": csrf, "action": "approve", "send_id": send.send_id}, max_redirects=0
    )
    assert refused.status == 303
    await page.goto(refused.headers["location"])
    assert "did not show all of it" in await page.inner_text(".flash.error")
    assert (await app.sends.status(send.send_id)).status == "pending_approval"

    await page.goto(f"/?mailbox={box}")
    await page.check(f"input[name=send_id][value^='{send.send_id}:']")
    await page.click("button:has-text('Approve selected')")
    await page.wait_for_url(re.compile(r"/\?mailbox="))
    assert "Approved 1 of 1" in await page.inner_text(".flash.ok")
    state = await wait_for_status(app, send.send_id, ["sent"])
    assert state.decision is not None and state.decision.channel == "dashboard-bulk"
    copies = sorted(d.recipient for d in app.sandbox.deliveries(box) if d.subject == "Invoice 2024-117")
    assert copies == ["carol@example.com", "jo@acme.example", "watcher@elsewhere.example"]


async def test_a_long_list_says_so_and_pages(page: Page, web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    app = web.app
    box = app.settings.default_mailbox
    monkeypatch.setattr(approvals, "PAGE_SIZE", 3)
    ids = [
        (await app.sends.submit(mailbox=box, to=["a@example.com"], subject=f"Digest {n}", body="b")).send_id
        for n in range(7)
    ]
    await page.reload()
    assert "Showing 1 to 3 of 7" in await page.inner_text("#range")
    seen = await page.locator("li.send").evaluate_all("items => items.map(i => i.dataset.sendId)")
    assert seen == ids[:3]  # the oldest first
    await page.click("a[rel=next] >> nth=0")
    assert "Showing 4 to 6 of 7" in await page.inner_text("#range")
    await page.click("a[rel=next] >> nth=0")
    assert "Showing 7 to 7 of 7" in await page.inner_text("#range")
    assert await page.locator("li.send").evaluate_all("items => items.map(i => i.dataset.sendId)") == ids[6:]
    await shot(page, "pending-paged")

    # Past what one listing reads, the page says the list is not all of them.
    monkeypatch.setattr(approvals, "MAX_SCAN", 4)
    await page.goto(f"/?mailbox={box}")
    assert "More than 4 sends are pending" in await page.inner_text("#incomplete")


@contextlib.asynccontextmanager
async def connected(app: Mailgate) -> AsyncIterator[Client]:
    async with Client(build_mcp(app)) as client:
        yield client


async def test_an_agent_cannot_keep_more_than_the_cap_waiting(web: Web) -> None:
    app = web.app
    app.settings.max_pending_per_mailbox = 2
    args = {"mailbox": app.settings.default_mailbox, "to": ["bob@example.com"], "body": "b"}
    async with connected(app) as client:
        first = await client.call_tool("durable_send", {**args, "subject": "One"})
        second = await client.call_tool("durable_send", {**args, "subject": "Two"})
        assert not first.is_error and not second.is_error
        # The cap is counted from visibility, which may not list a send started a moment ago.
        for _ in range(100):
            page = await app.sends.search(
                mailbox=app.settings.default_mailbox, status="pending_approval", limit=10, cursor=None
            )
            if len(page.sends) == 2:
                break
            await asyncio.sleep(0.1)
        third = await client.call_tool("durable_send", {**args, "subject": "Three"})
        assert third.is_error
        message = third.content[0].text  # type: ignore[union-attr]
        assert "2 emails waiting" in message and "MAILGATE_MAX_PENDING_PER_MAILBOX" in message
        assert "cancel_send" in message
        # A retry of a send that already waits is the same send, not a new one.
        again = await client.call_tool("durable_send", {**args, "subject": "One"})
        assert not again.is_error
        assert (again.structured_content or {})["deduplicated"] is True
        one = (first.structured_content or {})["send_id"]
        await client.call_tool("cancel_send", {"send_id": one})
        await wait_for_status(app, one, ["cancelled"])
        for _ in range(50):  # visibility catches up with the cancel
            third = await client.call_tool("durable_send", {**args, "subject": "Three"})
            if not third.is_error:
                break
            await asyncio.sleep(0.1)
        assert not third.is_error


async def test_a_flash_planted_from_another_port_is_not_shown(page: Page, web: Web) -> None:
    """Cookies do not keep ports apart: any local page may set one for 127.0.0.1."""
    planted = "Security scan passed: every pending email was verified safe"
    value = base64.urlsafe_b64encode(json.dumps({"kind": "ok", "text": planted}).encode()).decode()

    async def other_site(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b"<p>nothing to see</p>"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
            + f"Set-Cookie: mailgate_flash={value}; Path=/\r\n".encode()
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(other_site, "127.0.0.1", port)
    async with server:
        await page.goto(f"http://127.0.0.1:{port}/")
    assert "mailgate_flash" in {c["name"] for c in await page.context.cookies(web.url)}
    await page.goto("/mailboxes")
    assert planted not in await page.inner_text("body")
    assert await page.locator(".flash").count() == 0
    # The server's own flashes still show.
    mailbox = web.app.settings.default_mailbox
    await page.goto("/mailboxes")
    form = page.locator(f"form[action='/mailboxes/{mailbox}/mode']")
    await form.locator("select[name=mode]").select_option("gated_all")
    await form.locator("button[type=submit]").click()
    await page.wait_for_url("**/mailboxes")
    assert "is now gated_all" in await page.inner_text(".flash.ok")
