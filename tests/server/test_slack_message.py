"""Slack's signing scheme and the Block Kit message: pure functions, no network."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from server.settings import MailboxEntry, Settings
from server.web.slack_webhook import Seen, SignatureError, sign, verify
from tests.support.peers.slack_fake import SIGNING_SECRET, block_action, signed
from workflows.models import Attachment, EmailAddress, EmailDraft
from workflows.slack_client.message import SlackOutcome, SlackRequest, final_message, pending_message

BASE = "https://mailgate.example"


def test_slacks_documented_example_signature() -> None:
    # The worked example of Slack's "Verifying requests from Slack" page.
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
        b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
        b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert sign(SIGNING_SECRET, "1531420618", body) == expected
    verify(SIGNING_SECRET, body, "1531420618", expected, now=1531420618 + 299)


def test_forged_stale_future_and_missing_signatures_are_refused() -> None:
    body, headers = signed(block_action("UALICE", "mailgate_approve", "send-x", "1.0"))
    ts, sig = headers["x-slack-request-timestamp"], headers["x-slack-signature"]
    now = time.time()
    verify(SIGNING_SECRET, body, ts, sig, now)
    with pytest.raises(SignatureError, match="does not match"):
        verify("another-secret", body, ts, sig, now)
    with pytest.raises(SignatureError, match="does not match"):
        verify(SIGNING_SECRET, body + b"x", ts, sig, now)
    with pytest.raises(SignatureError, match="five minutes"):
        verify(SIGNING_SECRET, body, ts, sig, now + 301)
    with pytest.raises(SignatureError, match="five minutes"):
        verify(SIGNING_SECRET, body, ts, sig, now - 301)
    with pytest.raises(SignatureError, match="not a number"):
        verify(SIGNING_SECRET, body, "", sig, now)
    with pytest.raises(SignatureError, match="does not match"):
        verify(SIGNING_SECRET, body, ts, "", now)


def test_a_replayed_signature_is_taken_once() -> None:
    seen = Seen()
    assert seen.first("v0=aa", 1000.0)
    assert not seen.first("v0=aa", 1100.0)
    assert seen.first("v0=bb", 1100.0)


def request(body: str = "Hello") -> SlackRequest:
    draft = EmailDraft(
        to=(EmailAddress(address="carol@example.org", name="Carol"),),
        bcc=(EmailAddress(address="hidden@example.org"),),
        subject="*Approved* <!channel>",
        body=body,
        attachments=(Attachment(filename="q3.pdf", content_type="application/pdf", content_b64="", size=1200),),
    )
    return SlackRequest(
        send_id="send-abc",
        mailbox="agent@mailgate.local",
        channel="C0MAILGATE",
        requester="<@U0BOSS>",
        draft=draft,
        expires_at=datetime(2026, 12, 5, tzinfo=UTC),
    )


def test_the_message_shows_every_recipient_and_never_formats_what_the_agent_wrote() -> None:
    message = pending_message(request(), BASE)
    shown = json.dumps(message["blocks"])
    assert "hidden@example.org" in shown and "q3.pdf" in shown
    for block in message["blocks"]:
        for field in block.get("fields", [])[1:]:
            assert field["type"] == "plain_text"  # values: never mrkdwn
    subject = next(b for b in message["blocks"] if b.get("fields", [{}])[0].get("text") == "*Subject*")
    assert subject["fields"][1] == {"type": "plain_text", "text": "*Approved* <!channel>", "emoji": False}
    assert "&lt;@U0BOSS&gt;" in shown  # the requester, escaped in mrkdwn: no mention
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [e["text"]["text"] for e in actions["elements"]] == ["Approve", "Reject", "Edit"]
    assert actions["elements"][2]["url"] == f"{BASE}/sends/send-abc"


def test_a_long_body_is_cut_with_a_link_to_the_whole() -> None:
    shown = json.dumps(pending_message(request("x" * 5000), BASE)["blocks"])
    assert "x" * 1499 + "\\u2026" in shown and "x" * 1500 not in shown
    assert f"<{BASE}/sends/send-abc|read it all>" in shown


def test_the_final_message_says_who_and_when_and_has_no_buttons() -> None:
    at = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    outcome = SlackOutcome(status="rejected", by="alice@example.com", at=at, reason="Not <yet>")
    blocks = final_message(request(), outcome, BASE)["blocks"]
    shown = json.dumps(blocks)
    assert "Rejected* by" not in shown and ":x: Rejected by *alice@example.com*" in shown
    assert "2026-12-02 09:30 UTC" in shown and "Not &lt;yet&gt;" in shown
    assert all(b["type"] != "actions" for b in blocks)


def test_slack_settings_are_checked_and_name_the_field() -> None:
    with pytest.raises(ValueError, match="go together"):
        Settings(slack_bot_token="xoxb-1")
    with pytest.raises(ValueError, match="https:// is required"):
        Settings(slack_api_url="http://slack.example/api")
    with pytest.raises(ValueError, match="slack_channel"):
        MailboxEntry(address="a@mailgate.local", slack_channel="#approvals")  # a name, not an id
    assert MailboxEntry(address="a@mailgate.local", slack_channel="C0123ABCD").slack_channel == "C0123ABCD"
