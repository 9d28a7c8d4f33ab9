"""The dashboard over plain HTTP: sessions, CSRF, security headers, and the oversight pages."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage

import httpx
import pytest
from starlette.requests import Request

from server.validation import AttachmentInput
from server.web.dashboard.render import sanitize_html
from server.web.sessions import IDLE_SECONDS, SESSION_SECONDS, Session, SessionCodec
from tests.support.app import ADMIN_TOKEN, unique_mailbox
from tests.support.wait import wait_for_status
from tests.support.web import Web
from workflows.models import Decision


@pytest.fixture
async def browser_like(web: Web) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client signed in through the form, as a browser would be."""
    async with httpx.AsyncClient(base_url=web.url) as client:
        page = await client.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        response = await client.post(
            "/signin", data={"csrf": csrf.group(1), "name": "Olga Ops", "token": ADMIN_TOKEN, "next": "/mailboxes"}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/mailboxes"
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "secure" not in cookie  # plain http
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def test_pages_need_a_session(web: Web) -> None:
    response = await web.anonymous.get("/sends/send-aaaaaaaaaaaaaaaaaaaa")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/sends/send-aaaaaaaaaaaaaaaaaaaa"
    refused = await web.anonymous.post("/bulk", data={"action": "approve"})
    assert refused.status_code == 401
    # The admin bearer token is for the JSON API; the dashboard wants a session.
    assert (await web.admin.get("/")).status_code == 303


async def test_sign_in_refuses_a_wrong_token_and_a_missing_form_token(web: Web) -> None:
    async with httpx.AsyncClient(base_url=web.url) as client:
        csrf = csrf_of((await client.get("/signin")).text)
        wrong = await client.post("/signin", data={"csrf": csrf, "name": "x", "token": "wrong-token-0123456789"})
        assert wrong.status_code == 401
        assert "not the admin token" in wrong.text
        agent = await client.post(
            "/signin", data={"csrf": csrf_of(wrong.text), "name": "x", "token": web.app.secrets.agent_token}
        )
        assert agent.status_code == 401
        forged = await client.post("/signin", data={"name": "x", "token": ADMIN_TOKEN})
        assert forged.status_code == 403
        assert "mailgate_session" not in client.cookies


async def test_every_page_sends_security_headers_and_escapes(browser_like: httpx.AsyncClient, web: Web) -> None:
    send = await web.app.sends.submit(
        mailbox=web.app.settings.default_mailbox,
        to=["bob@example.com"],
        subject='<script>alert("s")</script>',
        body="<img src=x onerror=alert(1)>",
    )
    web.app.settings.temporal_ui_url = "http://127.0.0.1:8233"
    page = await browser_like.get(f"/sends/{send.send_id}")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#34;s&#34;)&lt;/script&gt;" in page.text
    assert "<img src=x" not in page.text
    assert f"http://127.0.0.1:8233/namespaces/default/workflows/{send.send_id}" in page.text
    for path in ("/", "/reviews", "/upgrades", "/inbound", "/mailboxes", "/sandbox"):
        # Generous: in this shared test server, earlier tests leave mailboxes whose workers are gone,
        # and the dashboard waits up to its query timeout for each of them (concurrently).
        response = await browser_like.get(path, timeout=60)
        assert response.status_code == 200, path
        assert "Content-Security-Policy" in response.headers


def test_sanitizing_removes_everything_that_could_run_or_load() -> None:
    dirty = (
        '<p onclick="x()">Hi <b>there</b></p><script>alert(1)</script><img src="https://t.example/p.gif">'
        '<a href="javascript:alert(1)">a</a><a href="https://example.com">b</a><style>body{}</style>'
        '<iframe src="https://e.example"></iframe><svg onload="x()"></svg>'
    )
    clean = str(sanitize_html(dirty))
    for danger in ("onclick", "<script", "alert", "<img", "javascript:", "<style", "<iframe", "<svg", "onload"):
        assert danger not in clean
    assert "<b>there</b>" in clean
    assert 'href="https://example.com"' in clean


def test_session_cookies_are_secure_over_tls_and_end_when_the_admin_token_changes(web: Web) -> None:
    settings = web.app.settings
    secrets = web.app.secrets

    def request(scheme: str) -> Request:
        return Request({"type": "http", "scheme": scheme, "headers": [], "path": "/", "server": ("h", 1)})

    codec = SessionCodec(secrets, settings)
    assert codec.secure(request("https"))
    assert not codec.secure(request("http"))
    behind_proxy = SessionCodec(secrets, settings.model_copy(update={"public_url": "https://mail.example.com"}))
    assert behind_proxy.secure(request("http"))

    value, session = codec.issue("olga")
    cookie = Request({"type": "http", "headers": [(b"cookie", f"mailgate_session={value}".encode())]})
    assert codec.read(cookie) == session
    rotated = SessionCodec(replace(secrets, admin_token="a-new-admin-token-0123456789"), settings)
    assert rotated.read(cookie) is None
    tampered = Request({"type": "http", "headers": [(b"cookie", f"mailgate_session={value[:-2]}xx".encode())]})
    assert codec.read(tampered) is None


def test_sessions_end_after_an_idle_time_and_an_absolute_lifetime(web: Web) -> None:
    codec = SessionCodec(web.app.secrets, web.app.settings)
    _, session = codec.issue("olga")

    def cookie(s: Session) -> Request:
        return Request({"type": "http", "headers": [(b"cookie", f"mailgate_session={codec.encode(s)}".encode())]})

    now = int(time.time())
    assert codec.read(cookie(replace(session, seen=now - IDLE_SECONDS + 30))) is not None
    assert codec.read(cookie(replace(session, seen=now - IDLE_SECONDS - 1))) is None
    # Used a minute ago, but signed in longer ago than the absolute lifetime.
    assert codec.read(cookie(replace(session, issued=now - SESSION_SECONDS - 1, seen=now - 60))) is None


async def test_loosening_a_mode_asks_for_confirmation_and_tightening_does_not(
    browser_like: httpx.AsyncClient, web: Web
) -> None:
    mailbox = web.app.settings.default_mailbox
    csrf = csrf_of((await browser_like.get("/mailboxes")).text)
    ask = await browser_like.post(f"/mailboxes/{mailbox}/mode", data={"csrf": csrf, "mode": "autonomous"})
    assert ask.status_code == 200
    assert "Loosen" in ask.text
    assert (await web.app.mailboxes.state(mailbox)).config.mode == "gated_send"
    done = await browser_like.post(
        f"/mailboxes/{mailbox}/mode", data={"csrf": csrf, "mode": "autonomous", "confirmed": "yes", "reason": "trusted"}
    )
    assert done.status_code == 303
    assert (await web.app.mailboxes.state(mailbox)).config.mode == "autonomous"
    tighter = await browser_like.post(f"/mailboxes/{mailbox}/mode", data={"csrf": csrf, "mode": "read_only"})
    assert tighter.status_code == 303
    assert (await web.app.mailboxes.state(mailbox)).config.mode == "read_only"
    bad = await browser_like.post(f"/mailboxes/{mailbox}/mode", data={"csrf": csrf, "mode": "anything"})
    assert bad.status_code == 400
    forged = await browser_like.post(f"/mailboxes/{mailbox}/mode", data={"mode": "autonomous", "confirmed": "yes"})
    assert forged.status_code == 403
    assert (await web.app.mailboxes.state(mailbox)).config.mode == "read_only"


async def test_reviews_upgrades_held_mail_and_the_sandbox_viewer(browser_like: httpx.AsyncClient, web: Web) -> None:
    app = web.app
    mailbox = unique_mailbox("watched")
    await app.mailboxes.create(mailbox, created_by="tests", mode="monitored")
    sent = await app.sends.submit(mailbox=mailbox, to=[app.settings.default_mailbox], subject="Status", body="ok")
    await wait_for_status(app, sent.send_id, ["sent"])
    reviews = await browser_like.get("/reviews")
    assert sent.send_id in reviews.text
    ack = await browser_like.post(
        "/reviews/ack", data={"csrf": csrf_of(reviews.text), "mailbox": mailbox, "send_id": sent.send_id}
    )
    assert ack.status_code == 303
    state = await app.mailboxes.state(mailbox)
    assert [r.acked_by for r in state.reviews] == ["Olga Ops"]

    upgrade = await app.mailboxes.request_upgrade(mailbox, "autonomous", "many routine mails", requested_by="agent")
    upgrades = await browser_like.get("/upgrades")
    assert "many routine mails" in upgrades.text
    assert upgrade.code in upgrades.text

    held = EmailMessage()
    held["From"] = "stranger@example.com"
    held["To"] = app.settings.default_mailbox
    held["Subject"] = "Held for a human"
    held["Message-ID"] = f"<held-{datetime.now(UTC).timestamp()}@example.com>"
    held.set_content("plain part")
    held.add_alternative("<p>rich <script>alert(1)</script>part</p>", subtype="html")
    box = app.settings.default_mailbox
    app.sandbox.deliver(held.as_bytes(), "stranger@example.com", [box], held_for=[box])
    inbound = await browser_like.get("/inbound")
    assert "Held for a human" in inbound.text
    email_id = re.search(r'name="email_id" value="([^"]+)"', inbound.text)
    assert email_id is not None
    forged = await browser_like.post(
        "/inbound", data={"mailbox": box, "email_id": email_id.group(1), "action": "release"}
    )
    assert forged.status_code == 403
    assert [e.email_id for e in await app.inbox.held(box)] == [email_id.group(1)]
    released = await browser_like.post(
        "/inbound",
        data={"csrf": csrf_of(inbound.text), "mailbox": box, "email_id": email_id.group(1), "action": "release"},
    )
    assert released.status_code == 303
    assert await app.inbox.held(box) == []

    sandbox = await browser_like.get("/sandbox", params={"mailbox": app.settings.default_mailbox})
    assert "Status" in sandbox.text
    assert "Held for a human" in sandbox.text
    row = re.search(r'href="/sandbox/messages/(\d+)">Held for a human', sandbox.text)
    assert row is not None
    message = await browser_like.get(f"/sandbox/messages/{row.group(1)}")
    assert "plain part" in message.text
    assert "rich part" in message.text.replace("<p>", "").replace("</p>", "")
    assert "<script>alert" not in message.text
    assert (await browser_like.get("/sandbox/messages/999999")).status_code == 404


async def test_bulk_reject_discarding_held_mail_and_a_sends_page(browser_like: httpx.AsyncClient, web: Web) -> None:
    app = web.app
    box = app.settings.default_mailbox
    inbound = EmailMessage()
    inbound["From"] = "Bob <bob@example.com>"
    inbound["To"] = box
    inbound["Subject"] = "Quote"
    inbound["Message-ID"] = parent = f"<quote-{datetime.now(UTC).timestamp()}@example.com>"
    inbound.set_content("How much?")
    app.sandbox.deliver(inbound.as_bytes(), "bob@example.com", [box])
    [email] = (await app.inbox.check(box)).emails
    reply = await app.inbox.reply(
        box,
        email.email_id,
        "Here it is.",
        attachments=[AttachmentInput(filename="quote.pdf", content_type="application/pdf", content_base64="JVBERg==")],
    )
    await app.sends.decide(reply.send_id, Decision(decision="approve", approver="Olga Ops", channel="test"))
    await wait_for_status(app, reply.send_id, ["sent"])
    page = await browser_like.get(f"/sends/{reply.send_id}")
    assert page.status_code == 200
    assert "quote.pdf" in page.text  # attachments
    assert parent.strip("<>") in page.text and ">Quote</a>" in page.text  # the thread, with its first message
    assert "approved" in page.text and "Olga Ops" in page.text  # the decision history

    first, second = [
        await app.sends.submit(mailbox=box, to=["bob@example.com"], subject=f"Bulk {i}", body="b") for i in (1, 2)
    ]
    for sent in (first, second):
        await wait_for_status(app, sent.send_id, ["pending_approval"])
    listing = await browser_like.get("/")
    ids = {"send_id": [first.send_id, second.send_id], "action": "reject", "csrf": csrf_of(listing.text)}
    without_reason = await browser_like.post("/bulk", data=ids)
    assert without_reason.status_code == 303
    assert (await app.sends.status(first.send_id)).status == "pending_approval"
    rejected = await browser_like.post("/bulk", data={**ids, "reason": "not now", "mailbox": box})
    assert rejected.status_code == 303
    for sent in (first, second):
        state = await wait_for_status(app, sent.send_id, ["rejected"])
        assert state.decision is not None and state.decision.approver == "Olga Ops"

    held = EmailMessage()
    held["From"] = "stranger@example.com"
    held["To"] = box
    held["Subject"] = "Discard me"
    held["Message-ID"] = f"<discard-{datetime.now(UTC).timestamp()}@example.com>"
    held.set_content("spam")
    app.sandbox.deliver(held.as_bytes(), "stranger@example.com", [box], held_for=[box])
    page = await browser_like.get("/inbound")
    email_id = re.search(r'name="email_id" value="([^"]+)"', page.text)
    assert email_id is not None
    discarded = await browser_like.post(
        "/inbound",
        data={"csrf": csrf_of(page.text), "mailbox": box, "email_id": email_id.group(1), "action": "discard"},
    )
    assert discarded.status_code == 303
    assert await app.inbox.held(box) == []
    assert "Discard me" not in [e.subject for e in (await app.inbox.check(box)).emails]
