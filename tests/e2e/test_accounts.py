"""Accounts as people have them, through a real `mailgate serve`: a send-only relay on loopback
that takes mail without a login (aiosmtpd, no AUTH), with a display name, a signature and a
send_as alias; markdown and HTML bodies arrive as multipart/alternative, exactly as approved."""

from __future__ import annotations

import asyncio
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.support.peers.smtp_sink import SmtpPeer
from tests.support.serve import Serve
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
RELAY = "news@relay.example"
ALIAS = "support@relay.example"


def config(path: Path, relay: SmtpPeer) -> Path:
    path.write_text(
        f"""
[[mailboxes]]
address = "{RELAY}"
provider = "smtp_imap"
smtp_url = "{relay.url}"
display_name = "Relay Bot"
signature = "Relay Bot\\nAcme Support"
send_as = ["Acme Support <{ALIAS}>"]
oversight_mode = "gated_send"
"""
    )
    return path


async def dashboard_page(serve: Serve, path: str) -> str:
    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as browser:
        signin = await browser.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', signin.text)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "name": "Olga Ops", "token": serve.token("admin"), "next": path}
        assert (await browser.post("/signin", data=form)).status_code == 303
        page = await browser.get(path)
        assert page.status_code == 200, page.text
        return page.text


def parts(raw: bytes) -> tuple[EmailMessage, str, str]:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg.get_content_type() == "multipart/alternative", msg.get_content_type()
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return msg, str(text.get_content()).replace("\r\n", "\n"), str(html.get_content()).replace("\r\n", "\n")


async def test_send_only_relay_without_login_rich_bodies_alias_signature(serve: Serve, tmp_path: Path) -> None:
    relay = SmtpPeer(tmp_path / "relay", security="plain", auth=False).start()
    try:
        serve.extra_env.update(MAILGATE_CONFIG=str(config(tmp_path / "mailgate.toml", relay)))
        await asyncio.to_thread(serve.start)
        admin = {"Authorization": f"Bearer {serve.token('admin')}"}
        async with serve.mcp() as client, httpx.AsyncClient(base_url=serve.url, headers=admin, timeout=30) as http:
            # Every inbox tool refuses clearly: the mailbox has no inbox.
            for tool, args in (
                ("check_inbox", {"mailbox": RELAY}),
                ("read_email", {"mailbox": RELAY, "email_id": "1"}),
                ("reply_email", {"mailbox": RELAY, "email_id": "1", "body": "hi"}),
            ):
                refused = await client.call_tool(tool, args)
                assert refused.is_error, (tool, refused.content)
                assert "send-only" in str(refused.content) and "no inbox" in str(refused.content), refused.content

            # An alias the mailbox does not have is refused, and nothing starts.
            wrong = await client.call_tool(
                "durable_send",
                {"mailbox": RELAY, "to": ["x@example.org"], "subject": "s", "body": "b", "from_alias": "ceo@x.example"},
            )
            assert wrong.is_error and "not an alias" in str(wrong.content), wrong.content

            # A markdown send from the alias; a human edits the body, then approves.
            sent = await client.call_tool(
                "durable_send",
                {
                    "mailbox": RELAY,
                    "to": ["carol@example.org"],
                    "subject": "Your ticket",
                    "body": "Hello **Carol**,\n\nsee [the docs](https://docs.example/x).",
                    "body_format": "markdown",
                    "from_alias": ALIAS,
                },
            )
            assert sent.structured_content is not None, sent.content
            send_id = sent.structured_content["send_id"]
            assert sent.structured_content["status"] == "pending_approval"
            refused = await client.call_tool("wait_for_reply", {"send_id": send_id, "timeout_minutes": 1})
            assert refused.is_error and "send-only" in str(refused.content), refused.content

            page = await dashboard_page(serve, f"/sends/{send_id}")
            assert "Acme Support <code>support@relay.example</code>" in page  # the exact From
            assert "<strong>Carol</strong>" in page and "-- \nRelay Bot\nAcme Support" in page  # both parts

            edited = "Hello **Carol**,\n\nfixed: see [the guide](https://docs.example/guide)."
            approved = await http.post(
                f"/api/approvals/{send_id}/approve", json={"approver": "alice", "edits": {"body": edited}}
            )
            assert approved.status_code == 200, approved.text
            await eventually(lambda: len(relay.sink.received) == 1)
            got = relay.sink.received[0]
            assert not got.authenticated and got.rcpt_tos == ["carol@example.org"]
            msg, text, html = parts(got.data)
            assert str(msg["From"]) == f"Acme Support <{ALIAS}>"
            # Both parts say what the human approved, each with the signature below "-- ".
            assert text.startswith(edited) and "the docs" not in text
            assert text.rstrip().endswith("-- \nRelay Bot\nAcme Support"), text
            assert "<strong>Carol</strong>" in html and 'href="https://docs.example/guide"' in html
            assert "the docs" not in html and "Relay Bot<br>" in html

            # An HTML body: sanitized (no script, no remote image), inline styles kept.
            hostile = (
                '<p style="color: #333">Hi <b>Dan</b></p><script>alert(1)</script>'
                '<img src="https://tracker.example/pixel.gif"><a href="javascript:alert(2)">x</a>'
            )
            sent = await client.call_tool(
                "durable_send",
                {"mailbox": RELAY, "to": ["dan@example.org"], "subject": "H", "body": hostile, "body_format": "html"},
            )
            assert sent.structured_content is not None, sent.content
            html_id = sent.structured_content["send_id"]
            approved = await http.post(f"/api/approvals/{html_id}/approve", json={"approver": "alice"})
            assert approved.status_code == 200, approved.text
            await eventually(lambda: len(relay.sink.received) == 2)
            msg, text, html = parts(relay.sink.received[1].data)
            assert str(msg["From"]) == f"Relay Bot <{RELAY}>"
            assert 'style="color: #333"' in html and "<b>Dan</b>" in html
            for gone in ("<script", "alert(", "<img", "tracker.example", "javascript:"):
                assert gone not in html and gone not in text, gone
            assert text.startswith("Hi Dan") and "-- \nRelay Bot" in text
        assert serve.stop() == 0
    finally:
        relay.stop()
