"""Accounts of every shape in the configuration, and the outgoing parts of rich bodies."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from server.settings import MailboxEntry
from workflows import ids
from workflows.mail.mime import build_message
from workflows.mail.richtext import quote_of, render_parts
from workflows.models import DeliveryRequest, EmailAddress, EmailDraft, MailboxPolicy, SendRequest
from workflows.providers.endpoints import EndpointError, parse_endpoint
from workflows.providers.oauth import Grant, GrantStore, ReauthNeeded
from workflows.trust.proofs import proof_key, sign_request, warrant_for, warrant_problem

SMTP = "smtp+starttls://a%40example.com@smtp.example.com:587"
IMAP = "imaps://a%40example.com@imap.example.com"


def test_a_loopback_smtp_relay_may_take_mail_without_a_login() -> None:
    assert parse_endpoint("smtp://127.0.0.1:2525", "smtp").username == ""
    assert parse_endpoint("smtp://localhost", "smtp").username == ""
    for url, kind in (("smtps://smtp.example.com", "smtp"), ("imap://127.0.0.1", "imap")):
        with pytest.raises(EndpointError, match="names no user"):
            parse_endpoint(url, kind)  # type: ignore[arg-type]


def test_send_only_mailboxes_and_relays_without_login() -> None:
    relay = MailboxEntry(address="news@example.com", provider="smtp_imap", smtp_url="smtp://127.0.0.1:25")
    assert not relay.has_inbox and relay.secret() == ""
    sender = MailboxEntry(address="a@example.com", provider="smtp_imap", smtp_url=SMTP, password_env="A_PW")
    assert not sender.has_inbox
    with pytest.raises(ValueError, match="password_env is required"):
        MailboxEntry(address="a@example.com", provider="smtp_imap", smtp_url=SMTP)
    with pytest.raises(ValueError, match="password_env is required"):  # IMAP always logs in
        MailboxEntry(address="a@example.com", provider="smtp_imap", smtp_url="smtp://127.0.0.1", imap_url=IMAP)
    with pytest.raises(ValueError, match="smtp_url is required"):
        MailboxEntry(address="a@example.com", provider="smtp_imap", imap_url=IMAP, password_env="A_PW")


def test_aliases_display_name_and_signature_are_checked() -> None:
    entry = MailboxEntry(address="a@example.com", send_as=["Help <help@example.com>", "b@example.com"])
    assert entry.aliases() == (
        EmailAddress(name="Help", address="help@example.com"),
        EmailAddress(address="b@example.com"),
    )
    with pytest.raises(ValueError, match="send_as"):
        MailboxEntry(address="a@example.com", send_as=["not an address"])
    with pytest.raises(ValueError, match="display_name"):
        MailboxEntry(address="a@example.com", display_name="Bob\r\nBcc: x@example.com")


def test_drafts_without_the_new_fields_keep_their_content_hash() -> None:
    draft = EmailDraft(to=(EmailAddress(address="b@example.com"),), subject="s", body="b")
    legacy = {
        k: v
        for k, v in draft.model_dump(mode="json").items()
        if k not in ("from_alias", "signature", "body_format", "quote")
    }
    before = hashlib.sha256(json.dumps({"draft": legacy}, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert ids.content_hash(draft) == before
    assert ids.content_hash(draft.model_copy(update={"body_format": "markdown"})) != before


def _draft(**fields: object) -> EmailDraft:
    return EmailDraft(to=(EmailAddress(address="b@example.com"),), subject="s", **fields)


def test_text_markdown_and_html_parts() -> None:
    plain = render_parts(_draft(body="Hi", signature="Ann\nAcme"))
    assert plain == type(plain)(text="Hi\n\n-- \nAnn\nAcme", html=None)

    md = render_parts(_draft(body="Hi **you**\n\n<script>x()</script>", body_format="markdown", signature="Ann"))
    assert md.html is not None and "<strong>you</strong>" in md.html and "<script" not in md.html
    assert md.text.startswith("Hi **you**") and md.text.endswith("-- \nAnn")

    html = render_parts(
        _draft(
            body='<p style="color:red" onclick="x()">Hi</p><img src="https://t.example/p.gif"><style>p{}</style>',
            body_format="html",
        )
    )
    assert html.html is not None
    assert 'style="color:red"' in html.html and "onclick" not in html.html and "<img" not in html.html
    assert "t.example" not in html.html and "<style" not in html.html and html.text.strip() == "Hi"


def test_a_reply_quotes_the_original_below_the_new_text_and_signature() -> None:
    quote = quote_of("Bob <bob@example.com>", datetime(2026, 11, 30, 10, tzinfo=UTC), "Can you?\n\nThanks")
    parts = render_parts(_draft(body="Yes", signature="Ann", quote=quote, body_format="markdown"))
    assert parts.text == (
        "Yes\n\n-- \nAnn\n\nOn Mon, 30 Nov 2026 10:00:00 +0000, Bob <bob@example.com> wrote:\n> Can you?\n>\n> Thanks"
    )
    assert parts.html is not None and "<blockquote>Can you?<br>" in parts.html
    assert "Bob &lt;bob@example.com&gt; wrote:" in parts.html


def test_the_message_is_multipart_alternative_from_the_alias() -> None:
    draft = _draft(
        body="# Hi", body_format="markdown", from_alias=EmailAddress(address="help@example.com", name="Help")
    )
    request = DeliveryRequest(
        send_id="send-x", mailbox="a@example.com", from_name="Ann", draft=draft, message_id="<x@example.com>",
        date=datetime(2026, 12, 1, tzinfo=UTC),
    )  # fmt: skip
    msg = message_from_bytes(build_message(request).as_bytes(), policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert str(msg["From"]) == "Help <help@example.com>"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    no_alias = build_message(request.model_copy(update={"draft": _draft(body="x")}))
    assert str(no_alias["From"]) == "Ann <a@example.com>" and no_alias.get_content_type() == "text/plain"


OAUTH = {
    "address": "a@example.com",
    "provider": "smtp_imap",
    "smtp_url": "smtp+starttls://a%40example.com@smtp.example.com:587",
    "imap_url": IMAP,
    "auth": "oauth2",
    "oauth_client_id": "client-1",
}


def test_oauth_mailboxes_have_built_in_endpoints_and_clear_errors() -> None:
    google = MailboxEntry(**OAUTH, oauth_provider="google")
    assert google.oauth_client().endpoints.scopes == ("https://mail.google.com/",)
    ms = MailboxEntry(**OAUTH, oauth_provider="microsoft", oauth_tenant="contoso.onmicrosoft.com")
    endpoints = ms.oauth_client().endpoints
    assert endpoints.token_url == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    assert "offline_access" in endpoints.scopes and ms.secret() == ""
    with pytest.raises(ValueError, match="needs oauth_authorize_url and oauth_token_url"):
        MailboxEntry(**OAUTH, oauth_provider="custom")
    with pytest.raises(ValueError, match="https:// is required"):
        MailboxEntry(
            **OAUTH,
            oauth_provider="custom",
            oauth_authorize_url="http://auth.example.com/a",
            oauth_token_url="https://auth.example.com/t",
        )
    with pytest.raises(ValueError, match="password_env does not apply"):
        MailboxEntry(**OAUTH, oauth_provider="google", password_env="PW")
    with pytest.raises(ValueError, match="applies only with auth = 'oauth2'"):
        MailboxEntry(
            address="a@example.com", provider="smtp_imap", smtp_url=SMTP, password_env="PW", oauth_provider="google"
        )


def test_the_grant_is_encrypted_0600_and_bound_to_the_key_and_mailbox(tmp_path: Path) -> None:
    store = GrantStore(tmp_path, b"k" * 32)
    store.save("a@example.com", Grant(refresh_token="refresh-secret-value", access_token="access-secret"))
    path = store.path("a@example.com")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert b"refresh-secret-value" not in path.read_bytes() and b"access-secret" not in path.read_bytes()
    loaded = store.load("a@example.com")
    assert loaded is not None and loaded.refresh_token == "refresh-secret-value"
    with pytest.raises(ReauthNeeded, match=r"mailgate auth login a@example\.com"):
        GrantStore(tmp_path, b"x" * 32).load("a@example.com")
    assert store.forget("a@example.com") and store.load("a@example.com") is None


def test_the_request_proof_covers_alias_signature_format_and_quote() -> None:
    key = proof_key(b"k" * 32)
    draft = _draft(
        body="Hi",
        body_format="markdown",
        signature="Ann",
        quote="Bob wrote:\nq",
        from_alias=EmailAddress(address="help@example.com", name="Help"),
    )
    request = sign_request(
        key,
        SendRequest(
            send_id="send-aaaaaaaaaaaaaaaaaaaa",
            mailbox="a@example.com",
            requester="agent",
            draft=draft,
            message_id="<m@x>",
            content_hash="h",
            policy=MailboxPolicy(mode="autonomous"),
            requested_at=datetime.now(UTC),
            approval_timeout=timedelta(hours=1),
        ),
        datetime.now(UTC),
    )
    delivery = DeliveryRequest(
        send_id=request.send_id,
        mailbox=request.mailbox,
        draft=draft,
        message_id="<m@x>",
        date=datetime.now(UTC),
        warrant=warrant_for(request, None),
    )
    assert warrant_problem(key, delivery, request.send_id, "autonomous") is None
    for change in (
        {"from_alias": EmailAddress(address="ceo@example.com")},
        {"from_alias": None},
        {"signature": "Mallory"},
        {"body_format": "html"},
        {"quote": ""},
    ):
        forged = delivery.model_copy(update={"draft": draft.model_copy(update=change)})
        assert warrant_problem(key, forged, request.send_id, "autonomous") is not None, change
