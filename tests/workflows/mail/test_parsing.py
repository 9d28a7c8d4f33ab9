"""The parser against the corpus, our own writer, and random bytes: zero crashes, right fields."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.workflows.corpus import CORPUS, Case
from workflows.mail.htmltext import html_to_text
from workflows.mail.mime import build_message
from workflows.mail.parsing import ParsedEmail, parse_email
from workflows.models import Attachment, DeliveryRequest, EmailAddress, EmailDraft
from workflows.providers.sandbox.store import SandboxStore
from workflows.read_models import EmailQuery

NAMES = sorted(CORPUS)


def check(parsed: ParsedEmail, case: Case) -> None:
    assert not [d for d in parsed.defects if d.startswith("parser error")]
    if case.subject:
        assert parsed.subject == case.subject
    if case.sender:
        assert parsed.sender is not None and parsed.sender.address == case.sender
    if case.sender_name:
        assert parsed.sender is not None and parsed.sender.name == case.sender_name
    for needle in case.text_has:
        assert needle in parsed.text
    for needle in case.text_lacks:
        assert needle not in parsed.text
    assert parsed.from_html is case.from_html
    if case.attachments:
        assert [(a.filename, a.content_type, a.content) for a in parsed.attachments] == list(case.attachments)
    if case.message_id:
        assert parsed.message_id == case.message_id
    if case.references:
        assert parsed.references == case.references
    if case.in_reply_to:
        assert parsed.in_reply_to == case.in_reply_to
    if case.to:
        assert [a.address for a in parsed.to] == list(case.to)
    # Whatever came in, what comes out is clean text: valid Unicode, no control characters.
    for value in [parsed.subject, parsed.text, parsed.snippet, *(a.filename for a in parsed.attachments)]:
        value.encode("utf-8")
        assert not any(ord(c) < 32 and c not in "\n\t" for c in value)
    assert "\n" not in parsed.subject


@pytest.mark.parametrize("name", NAMES)
def test_corpus_message_parses_to_the_expected_fields(name: str) -> None:
    check(parse_email(CORPUS[name].raw), CORPUS[name])


@pytest.mark.parametrize("name", NAMES)
def test_corpus_message_round_trips_through_the_sandbox_store(name: str, tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "s.db")
    store.create_mailbox("agent@mailgate.local")
    raw = CORPUS[name].raw
    if not parse_email(raw).message_id:
        raw = b"Message-ID: <added@sandbox.mailgate.local>\r\n" + raw
    store.deliver(raw, "someone@example.com", ["agent@mailgate.local"])
    [listed] = store.list_emails("agent@mailgate.local", EmailQuery()).emails
    stored = store.fetch_email("agent@mailgate.local", listed.email_id)
    assert stored.raw == raw  # byte for byte: the original is kept
    reparsed = parse_email(stored.raw)
    check(reparsed, CORPUS[name])
    assert listed.subject == reparsed.subject
    assert listed.snippet == reparsed.snippet
    assert listed.has_attachments == bool(reparsed.attachments)


def test_the_quoted_part_of_a_reply_is_not_in_its_snippet() -> None:
    parsed = parse_email(CORPUS["reply_with_quotes"].raw)
    assert "> Hi" in parsed.text
    assert parsed.snippet == "Yes, Friday works. See you at noon."


def test_what_mailgate_writes_it_reads_back_exactly() -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256))
    draft = EmailDraft(
        to=(EmailAddress(address="bob@example.com", name="Bob Müller"),),
        cc=(EmailAddress(address="carol@example.com"),),
        subject="Grüße \u2013 Bericht für März 🌷",
        body="Hallo Bob,\n\nanbei der Bericht.\n\n-- \nAgent",
        in_reply_to="<parent@example.com>",
        references=("<root@example.com>", "<parent@example.com>"),
        attachments=(
            Attachment(
                filename="Bericht März \u2013 final.pdf",
                content_type="application/pdf",
                content_b64=base64.b64encode(pdf).decode(),
                size=len(pdf),
            ),
            Attachment(filename="日本語.txt", content_type="text/plain", content_b64="44GC", size=3),
        ),
    )
    request = DeliveryRequest(
        send_id="send-aaaaaaaaaaaaaaaaaaaa",
        mailbox="agent@mailgate.local",
        from_name="Agent",
        draft=draft,
        message_id="<send-aaaaaaaaaaaaaaaaaaaa@mailgate.local>",
        date=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
    )
    raw = build_message(request).as_bytes()
    assert b"filename*=utf-8''Bericht%20M%C3%A4rz" in raw  # RFC 2231 on the wire
    parsed = parse_email(raw)
    assert parsed.subject == draft.subject
    assert parsed.text == draft.body
    assert parsed.sender == EmailAddress(address="agent@mailgate.local", name="Agent")
    assert parsed.to == draft.to and parsed.cc == draft.cc
    assert parsed.in_reply_to == "<parent@example.com>"
    assert parsed.references == draft.references
    assert parsed.message_id == request.message_id
    assert [(a.filename, a.content_type, a.content) for a in parsed.attachments] == [
        ("Bericht März \u2013 final.pdf", "application/pdf", pdf),
        ("日本語.txt", "text/plain", "あ".encode()),
    ]


def test_html_to_text_keeps_structure_and_drops_hidden_text() -> None:
    html = (
        "<p>Hello <b>there</b></p><br><table><tr><td>a</td><td>b</td></tr></table>"
        "<span hidden>secret</span><pre>  keep\n  spacing</pre><p>x<br/>y</p>"
        "<div style='visibility: hidden'><p>also hidden</p></div><a href='mailto:z@example.com'>z@example.com</a>"
    )
    text = html_to_text(html)
    assert "Hello there" in text
    assert "a b" in text
    assert "secret" not in text and "also hidden" not in text
    assert "  keep\n  spacing" in text
    assert "x\ny" in text
    assert "z@example.com" in text and "mailto" not in text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_random_bytes_never_crash_the_parser(raw: bytes) -> None:
    parsed = parse_email(raw)
    parsed.text.encode("utf-8")
    parsed.subject.encode("utf-8")


def _mutate(raw: bytes, cuts: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(raw)
    for position, length, insert in cuts:
        at = position % (len(data) + 1)
        data[at : at + length] = insert
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(NAMES),
    st.lists(
        st.tuples(
            st.integers(0, 5000),
            st.integers(0, 20),
            st.sampled_from([b"", b"\r\n", b"=?", b"?=", b"--", b'"', b"<", b">", b"\xff", b"\x00", b";", b"\r\n\r\n"]),
        ),
        max_size=8,
    ),
)
def test_damaged_corpus_messages_never_crash_the_parser(name: str, cuts: list[tuple[int, int, bytes]]) -> None:
    parsed = parse_email(_mutate(CORPUS[name].raw, cuts))
    assert not [d for d in parsed.defects if d.startswith("parser error")], parsed.defects
