"""Bodies sized for a context window: concise text, and parts that join back into the text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.mail.bodies import OffsetError, concise_text, text_part
from workflows.mail.htmltext import html_to_text


def test_concise_text_drops_quoted_history_and_signature() -> None:
    reply = (
        "Tuesday works.\n\nSee you then.\n\n-- \nBob Example\nACME Corp\n\n"
        "On Mon, 30 Nov 2026 at 10:00, Alice <a@example.com> wrote:\n> Does Tuesday work?\n> Alice\n"
    )
    assert concise_text(reply) == "Tuesday works.\n\nSee you then."
    outlook = "Fine by me.\n\nFrom: Alice <a@example.com>\nSent: Monday\nTo: Bob\nSubject: plan\n\nold text"
    assert concise_text(outlook) == "Fine by me."
    mobile = "Yes.\n\nSent from my iPhone"
    assert concise_text(mobile) == "Yes."
    inline = "> question one\nanswer one\n> question two\nanswer two"
    assert concise_text(inline) == "answer one\nanswer two"
    # A "-- " far from the end is a rule in the text, not a signature.
    ruled = "intro\n-- \n" + "\n".join(f"line {i}" for i in range(30))
    assert concise_text(ruled) == ruled


def test_html_becomes_markdownish_text() -> None:
    text = html_to_text("<h2>News</h2><p>Read <a href='https://example.net/a'>the story</a></p><ul><li>x</li></ul>")
    assert "## News" in text
    assert "[the story](https://example.net/a)" in text
    assert "- x" in text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000), st.integers(50, 800))
def test_parts_join_back_into_the_text(text: str, size: int) -> None:
    parts: list[str] = []
    offset = 0
    while True:
        part = text_part(text, offset, size)
        assert len(part.text) <= size and part.total == len(text)
        parts.append(part.text)
        if part.next_offset is None:
            break
        assert part.next_offset > offset and part.remaining == len(text) - part.next_offset
        offset = part.next_offset
    assert "".join(parts) == text


def test_parts_end_at_a_line_or_word_and_bad_offsets_are_refused() -> None:
    text = "alpha beta gamma\n" * 100
    part = text_part(text, 0, 100)
    assert part.text.endswith("\n") and part.next_offset == len(part.text)
    with pytest.raises(OffsetError, match="past the end"):
        text_part(text, len(text) + 1, 100)
    with pytest.raises(OffsetError):
        text_part(text, len(text), 100)
    assert text_part("", 0, 100).text == ""
