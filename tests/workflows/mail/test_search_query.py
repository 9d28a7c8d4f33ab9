"""The search syntax: what each operator parses to, and clear errors for bad queries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows.mail.search_query import QuerySyntaxError, SearchQuery, parse_query


def test_every_operator_parses() -> None:
    query = parse_query(
        'Invoice "due date" from:bob@example.com to:alice subject:"weekly report" has:attachment is:unread '
        "in:Archive label:work before:2026-12-01 after:2026-11-01 thread:thread-7"
    )
    assert query == SearchQuery(
        terms=(("invoice",), ("due", "date")),
        subject=(("weekly", "report"),),
        senders=("bob@example.com",),
        recipients=("alice",),
        has_attachment=True,
        unread=True,
        folder="archive",
        labels=("work",),
        before=datetime(2026, 12, 1, tzinfo=UTC),
        after=datetime(2026, 11, 1, tzinfo=UTC),
        thread="thread-7",
    )
    assert query.ranked


def test_words_punctuation_and_lookalike_prefixes() -> None:
    assert parse_query("re: budget-2027").terms == (("re",), ("budget", "2027"))
    assert parse_query("https://example.com/a").terms == (("https",), ("example", "com", "a"))
    assert parse_query("from:a from:b").senders == ("a", "b")
    assert parse_query("is:read").unread is False
    assert not parse_query("is:read").ranked
    assert parse_query("   ") == SearchQuery()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('"unclosed phrase', "quote is not closed"),
        ("colour:red", "unknown operator colour:"),
        ("from:", "from: needs a value"),
        ("from: bob", "from: needs a value"),
        ("before:yesterday", "YYYY-MM-DD"),
        ("after:2026-13-01", "YYYY-MM-DD"),
        ("has:pdf", "has:attachment"),
        ("is:starred", "is:unread or is:read"),
        ("is:read is:unread", "match nothing"),
        ("in:a in:b", "in: appears 2 times"),
        ("subject:!!", "subject: needs a word"),
        ("in:../../etc", "a folder is"),
        ("x" * 1001, "at most 1000"),
        (" ".join(["w"] * 33), "at most 32 terms"),
    ],
)
def test_bad_queries_say_what_is_wrong(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match=message):
        parse_query(query)
