"""search_email over the sandbox index (the IMAP index is the same store): 6,000 generated
messages, every operator, results checked against a reference computed here in Python."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.support.peers.postgres_fixtures import ENGINES
from tests.support.search_corpus import LABELS, PEOPLE, VOCABULARY, Record, bulk_insert, generate, matches
from workflows.mail.search_query import QuerySyntaxError, parse_query
from workflows.providers.sandbox.search import RANK, conditions, match_expression
from workflows.providers.sandbox.store import SandboxStore
from workflows.read_models import EmailQuery
from workflows.store import open_database

BOX = "agent@mailgate.local"
OTHER = "other@mailgate.local"
COUNT = 6000


@pytest.fixture(scope="module", params=ENGINES)
def corpus(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SandboxStore, list[Record]]:
    """The same corpus on both engines: every test below runs on SQLite (FTS5) and PostgreSQL."""
    url = request.getfixturevalue("postgres_server").new_database() if request.param == "postgresql" else None
    store = SandboxStore(open_database(Path(tmp_path_factory.mktemp("search")) / "sandbox.db", url))
    records = bulk_insert(store, generate(COUNT, BOX) + generate(500, OTHER, seed=3))
    return store, records


def queries(records: list[Record]) -> list[str]:
    rng = random.Random(5)
    picked = [r for r in records if r.mailbox == BOX and not r.held][:50]
    out = [
        "invoice",
        "Invoices budgeting",
        "w17 w18",
        f'"{" ".join(picked[0].body.split()[3:5])}"',
        f'"{picked[1].subject}"',
        "subject:report",
        'subject:"meeting launch"',
        f"from:{PEOPLE[3][1]}",
        "from:example3.com is:unread",
        f"to:{PEOPLE[5][1]} review",
        "has:attachment contract",
        "is:read in:sent",
        "in:archive deployx",
        "in:trash",
        "label:urgent",
        "label:work label:home",
        "after:2026-03-01 before:2026-03-08",
        "before:2026-01-03",
        f"thread:thread-{picked[2].thread}",
        "travelz from:person",
        "nosuchwordanywhere",
    ]
    for _ in range(15):
        words = rng.sample(VOCABULARY, 2)
        extra = rng.choice(["", " is:unread", f" label:{rng.choice(LABELS)}", " has:attachment", " after:2026-06-01"])
        out.append(" ".join(words) + extra)
    return out


def everything(store: SandboxStore, query: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = store.search(BOX, query, 100, cursor)
        ids += [e.email_id for e in page.emails]
        cursor = page.next_cursor
        if cursor is None:
            return ids


def test_search_matches_the_reference_for_every_operator(corpus: tuple[SandboxStore, list[Record]]) -> None:
    store, records = corpus
    assert sum(1 for r in records if r.mailbox == BOX) >= 5000
    nonempty = 0
    for query in queries(records):
        parsed = parse_query(query)
        expected = {str(r.row_id) for r in records if matches(r, parsed, BOX)}
        found = everything(store, query)
        assert len(found) == len(set(found)), query  # pages never repeat
        assert set(found) == expected, query
        nonempty += bool(expected)
        if not parsed.ranked:
            assert found == sorted(found, key=int, reverse=True), query  # newest first without words
    assert nonempty >= 25


def test_words_in_the_subject_rank_first(corpus: tuple[SandboxStore, list[Record]]) -> None:
    store, records = corpus
    page = store.search(BOX, "lunchq", 100, None)
    by_id = {str(r.row_id): r for r in records}
    in_subject = ["lunchq" in by_id[e.email_id].subject.split() for e in page.emails]
    assert True in in_subject and False in in_subject
    # Ranked: subject hits come before body-only hits on the whole (bm25 weighs the subject 4x).
    subject_at = [i for i, hit in enumerate(in_subject) if hit]
    body_at = [i for i, hit in enumerate(in_subject) if not hit]
    assert sum(subject_at) / len(subject_at) < sum(body_at) / len(body_at)


def test_held_mail_and_other_mailboxes_stay_invisible(corpus: tuple[SandboxStore, list[Record]]) -> None:
    store, records = corpus
    held = [r for r in records if r.held and r.mailbox == BOX]
    assert held
    for record in held[:5]:
        found = everything(store, f'"{record.subject}"')
        assert str(record.row_id) not in found
    mine = {str(r.row_id) for r in records if r.mailbox == BOX}
    assert set(everything(store, "invoice")) <= mine


def test_check_inbox_query_takes_the_same_syntax(corpus: tuple[SandboxStore, list[Record]]) -> None:
    store, records = corpus
    query = "budget is:unread"
    parsed = parse_query(query)
    expected = {str(r.row_id) for r in records if r.folder == "inbox" and matches(r, parsed, BOX)}
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_emails(BOX, EmailQuery(search=query, limit=100, cursor=cursor))
        seen += [e.email_id for e in page.emails]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(expected, key=int, reverse=True)
    sent = store.list_emails(BOX, EmailQuery(search="in:sent", limit=5))
    assert sent.emails and all(e.folder == "sent" for e in sent.emails)


def test_bad_queries_and_cursors_are_refused(corpus: tuple[SandboxStore, list[Record]]) -> None:
    store, _ = corpus
    with pytest.raises(QuerySyntaxError, match="unknown operator"):
        store.search(BOX, "colour:red", 10, None)
    with pytest.raises(ValueError, match="cursor"):
        store.search(BOX, "invoice", 10, "abc")


def test_mail_delivered_later_is_searchable(tmp_path: Path, database_url: str | None) -> None:
    store = SandboxStore(open_database(tmp_path / "s.db", database_url))
    store.create_mailbox(BOX)
    raw = (
        f"Message-ID: <fresh@example.com>\r\nFrom: Dana <dana@example.org>\r\nTo: {BOX}\r\n"
        "Subject: Quarterly numbers\r\n\r\nThe café figures are attached.\r\n"
    ).encode()
    store.deliver(raw, "dana@example.org", [BOX])
    assert [e.subject for e in store.search(BOX, "cafe from:dana", 10, None).emails] == ["Quarterly numbers"]
    assert store.search(BOX, '"figures are attached" subject:quarterly', 10, None).emails
    assert not store.search(BOX, '"attached figures"', 10, None).emails


def test_ranked_pages_follow_the_full_ranking_exactly(corpus: tuple[SandboxStore, list[Record]]) -> None:
    """Pages of a ranked search, at every page size and offset, follow exactly the order of
    ranking every match (bm25, then newest first), ties and rare filters included; with the
    planner's statistics made on the way (the corpus is large enough to have them)."""
    store, _ = corpus
    for query in ("invoice", "subject:launch is:unread", f"invoice from:{PEOPLE[1][1]}", "w3 label:later", "lunchq"):
        parsed = parse_query(query)
        with store._read() as tx:
            if tx.dialect != "sqlite":
                pytest.skip("the reference ranking below is SQLite's FTS5 bm25")
            where, params = conditions(tx, parsed, default_folder=None, with_match=not parsed.ranked)
            full = [
                str(row[0])
                for row in tx.execute(
                    f"SELECT id FROM messages JOIN (SELECT rowid AS hit, {RANK} AS score FROM messages_fts"  # noqa: S608
                    f" WHERE messages_fts MATCH ?) ON hit = id WHERE mailbox = ? AND {' AND '.join(where)}"
                    " ORDER BY score, id DESC",
                    (match_expression(parsed), BOX, *params),
                ).fetchall()
            ]
        assert full, query
        for size in (7, 20, 100):
            found: list[str] = []
            cursor = None
            while True:
                page = store.search(BOX, query, size, cursor)
                found += [e.email_id for e in page.emails]
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert found == full, (query, size)
