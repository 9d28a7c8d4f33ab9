"""Invisible and direction-changing characters: refused in submitted header text, marked in what
humans read; and what an HTML view would hide, named for the approver."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest

from server.errors import InvalidInput
from server.validation import AttachmentInput, parse_attachments, parse_edits, reply_address, safe_subject
from server.web.dashboard.render import sanitize_report, visible
from workflows.mail.addresses import AddressError, check_header_text, parse_address
from workflows.mail.htmltokens import tokens
from workflows.mail.visibility import body_warnings, draft_warnings, hidden_by_html, invisible_chars, show_invisible
from workflows.models import Attachment, EmailAddress, EmailDraft
from workflows.notices import Notice, email_text, webhook_event

BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\U000e0041"]


@pytest.mark.parametrize("char", BIDI + ZERO_WIDTH)
def test_every_bidi_control_and_invisible_format_character_is_refused_in_header_text(char: str) -> None:
    mark = re.escape(f"U+{ord(char):04X}")
    for value, field in ((f"Invoice {char}fdp.exe", "subject"), (f"Bob{char}", "display_name")):
        # The error names the character and shows where it is.
        with pytest.raises(AddressError, match=rf"{field} contains .*{mark} .*<{mark}>"):
            check_header_text(value, field, 500)
    with pytest.raises(AddressError, match=mark):
        parse_address(f"Bob Jones{char} <moc.ynapmoc@bob.ti>")
    with pytest.raises(AddressError, match=mark):
        parse_address(f"bob{char}@example.com")


def test_ordinary_unicode_in_header_text_is_kept() -> None:
    for text in ("Zoë Ångström", "田中 太郎", "محمد", "שלום", "Ünïcödé ✓ 👍"):
        assert check_header_text(text, "subject", 500) == text
    assert parse_address("Zoë <zoe@example.com>").name == "Zoë"


def test_submission_and_human_edits_refuse_them_with_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match=r"attachments\[1\]\.filename contains .*U\+202E RIGHT-TO-LEFT OVERRIDE"):
        parse_attachments([AttachmentInput(filename="invoice\u202efdp.exe", content_base64="TVo=")])
    with pytest.raises(InvalidInput, match=r"to: .*U\+202E"):
        parse_edits(to=["Bob Jones\u202e <moc.ynapmoc@bob.ti>"])
    with pytest.raises(InvalidInput, match=r"subject contains .*U\+200B"):
        parse_edits(subject="Pay\u200bPal")


def test_a_reply_drops_them_from_the_strangers_name_and_subject() -> None:
    cleaned = reply_address(EmailAddress(address="moc.knab@troppus.ti", name="Bank Support\u202e"))
    assert cleaned == EmailAddress(address="moc.knab@troppus.ti", name="Bank Support")
    assert safe_subject("Statement \u202efdp.exe\u200b") == "Re: Statement fdp.exe"
    check_header_text(safe_subject("Statement \u202efdp.exe"), "subject", 500)


def test_invisible_characters_are_shown_as_marks() -> None:
    text = "IBAN DE89\u200b3704 \u202eZ"
    assert show_invisible(text) == "IBAN DE89<U+200B>3704 <U+202E>Z"
    assert invisible_chars(text) == {"\u200b": 1, "\u202e": 1}
    html = str(visible("<b>\u202e"))
    assert html.startswith('&lt;b&gt;<span class="invisible" title="U+202E RIGHT-TO-LEFT OVERRIDE">')
    assert "&lt;U+202E&gt;</span>" in html and "\u202e" not in html


def test_body_warnings_name_invisible_characters_and_what_html_would_hide() -> None:
    assert body_warnings("Hello Bob,\n\nsee you at 10.\n") == []
    assert body_warnings("if a < b and c > d then") == []
    body = (
        "<p>Hi</p><!-- card 4111 --><style>x{} /* pw hunter2 */</style>"
        '<span style="display: none">secret one</span><div hidden>secret two</div>'
        '<p style="font-size:0">secret three</p><p>pay 12\u200b34</p>'
    )
    found = hidden_by_html(body)
    assert [f.split(":")[0] for f in found] == [
        "a comment <!-- -->",
        "inside <style>",
        'inside <span style="display',
        "inside <div hidden>",
        'inside <p style="font-size',
    ]
    warnings = body_warnings(body)
    assert "U+200B ZERO WIDTH SPACE" in warnings[0]
    assert "goes out as plain text" in warnings[1]
    for secret in ("card 4111", "hunter2", "secret one", "secret two", "secret three"):
        assert secret in warnings[1]


def test_the_sanitized_view_lists_everything_the_sanitizer_removed() -> None:
    shown = sanitize_report(
        '<p onclick="x()">Hi <b>there</b></p><!-- card 4111 --><script>steal()</script>'
        '<style>p{}</style><template>tucked away</template><img src="https://t.example/p.gif">'
        '<a href="javascript:alert(1)">a</a><a href="https://example.com">b</a><span title="\u202e">z</span>'
    )
    html = str(shown.html)
    assert "<b>there</b>" in html and 'href="https://example.com"' in html
    assert "card 4111" not in html and "steal" not in html and "tucked away" not in html
    assert "\u202e" not in html
    removed = "\n".join(shown.removed)
    for expected in (
        "a comment: “card 4111”",
        "<script> with its content: “steal()”",
        "<style> with its content: “p{}”",
        "text: “tucked away”",
        "<img> tags: 1",
        "<template> tags: 1",
        'attribute onclick="x()" on <p>',
        'attribute href="javascript:alert(1)" on <a>',
        'attribute title="<U+202E>" on <span>',
    ):
        assert expected in removed
    assert sanitize_report("<p>plain <b>bold</b></p>").removed == []


def test_the_approvers_notice_marks_them_and_warns() -> None:
    draft = EmailDraft(
        to=(EmailAddress(address="bob@example.com", name="Bob"),),
        subject="Report",
        body="<p>Hi</p><!-- card 4111 -->\npay 12\u200b34",
        attachments=(Attachment(filename="r.pdf", content_type="application/pdf", content_b64="", size=3),),
    )
    notice = Notice(
        notice_id="n1",
        kind="approval_requested",
        mailbox="agent@mailgate.local",
        at=datetime(2026, 12, 1, tzinfo=UTC),
        send_id="send-abcdefghij2345abcdef",
        draft=draft,
    )
    _, body = email_text(notice, "http://127.0.0.1:1")
    assert body.count("LOOK CLOSELY:") == 2
    assert "| pay 12<U+200B>34" in body and "\u200b" not in body
    assert "Bcc:     (none)" in body
    assert webhook_event(notice, "http://x")["data"]["warnings"] == draft_warnings(draft)
    clean = draft.model_copy(update={"body": "Hi Bob"})
    assert "LOOK CLOSELY" not in email_text(notice.model_copy(update={"draft": clean}), "http://x")[1]


def test_the_tokenizer_reads_tags_comments_and_raw_text_as_a_browser_would() -> None:
    found = [
        (t.kind, t.name, t.attrs, t.data)
        for t in tokens('a &amp; b<!-- c --><P Title="x > y" hidden>d</p><SCRIPT>if (a<b) x()</script ><br/></>e<f')
    ]
    assert found == [
        ("text", "", (), "a & b"),
        ("comment", "", (), " c "),
        ("start", "p", (("title", "x > y"), ("hidden", None)), ""),
        ("text", "", (), "d"),
        ("end", "p", (), ""),
        ("start", "script", (), ""),
        ("text", "", (), "if (a<b) x()"),
        ("end", "script", (), ""),
        ("start", "br", (), ""),
        ("text", "", (), "e"),
    ]  # the unfinished "<f" at the end is dropped, as HTML does


@pytest.mark.parametrize(
    "hostile", ["<a x" * 16384, "<!--" * 16384, "</" * 32768, "<?" * 32768, "<![" * 21845, '<a x="' * 10922]
)
def test_hostile_markup_is_read_in_linear_time(hostile: str) -> None:
    # The standard library's HTMLParser needs minutes for 64 KB of "<a x"; this takes well under a second.
    started = time.perf_counter()
    body_warnings(hostile)
    sanitize_report(hostile)
    assert time.perf_counter() - started < 10
