"""The sandbox's read side: listings, filters, cursors, held mail, changes, and migration."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workflows.providers.base import EmailNotFound
from workflows.providers.sandbox.provider import SandboxProvider, UnknownHold
from workflows.providers.sandbox.store import SandboxStore
from workflows.read_models import EmailQuery
from workflows.store import open_database

BOX = "agent@mailgate.local"


def raw(n: int, sender: str = "bob@example.com", subject: str | None = None, body: str = "hello") -> bytes:
    return (
        f"Message-ID: <m{n}@example.com>\r\nFrom: Sender {n} <{sender}>\r\nTo: {BOX}\r\n"
        f"Subject: {subject or f'Message {n}'}\r\n\r\n{body} {n}\r\n"
    ).encode()


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> SandboxStore:
    """On both engines: SQLite in tmp_path, and a fresh PostgreSQL database."""
    store = SandboxStore(open_database(tmp_path / "sandbox.db", database_url))
    store.create_mailbox(BOX)
    return store


def test_listing_is_newest_first_and_pages_with_a_cursor(store: SandboxStore) -> None:
    for n in range(7):
        store.deliver(raw(n), "bob@example.com", [BOX])
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_emails(BOX, EmailQuery(limit=3, cursor=cursor))
        seen += [e.subject for e in page.emails]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"Message {n}" for n in reversed(range(7))]
    with pytest.raises(ValueError, match="cursor"):
        store.list_emails(BOX, EmailQuery(cursor="nonsense"))


def test_filters_unread_sender_text_and_since(store: SandboxStore) -> None:
    store.deliver(raw(1, "alice@example.org", "Invoice", "Total due: 5 €"), "x@y.z", [BOX])
    store.deliver(raw(2, "bob@example.com", "Straße", "Grüße"), "x@y.z", [BOX])
    store.deliver(raw(3, "carol@example.net", "100%_done"), "x@y.z", [BOX])
    first = store.list_emails(BOX, EmailQuery()).emails[-1]
    store.change_email(BOX, first.email_id, "read", "agent")

    def subjects(**kw: object) -> list[str]:
        return [e.subject for e in store.list_emails(BOX, EmailQuery(**kw)).emails]

    assert subjects(unread_only=True) == ["100%_done", "Straße"]
    assert subjects(sender="ALICE") == ["Invoice"]
    assert subjects(sender="example.net") == ["100%_done"]
    assert subjects(text="total due") == ["Invoice"]
    assert subjects(text="STRASSE") == ["Straße"]  # Unicode case folding: ß matches ss
    assert subjects(text="straße") == ["Straße"]
    assert subjects(text="grüße") == ["Straße"]
    assert subjects(text="%") == ["100%_done"]  # LIKE wildcards are matched literally
    assert subjects(text="%_d") == ["100%_done"]
    assert subjects(text="1_0") == []
    assert subjects(since=datetime.now(UTC) + timedelta(minutes=1)) == []
    assert len(subjects(since=datetime.now(UTC) - timedelta(minutes=1))) == 3


def test_held_mail_is_invisible_until_released(store: SandboxStore) -> None:
    store.deliver(raw(1), "bob@example.com", [BOX], held_for=[BOX])
    assert store.list_emails(BOX, EmailQuery()).emails == ()
    [held] = store.list_emails(BOX, EmailQuery(held=True)).emails
    with pytest.raises(EmailNotFound):
        store.fetch_email(BOX, held.email_id)
    assert store.fetch_email(BOX, held.email_id, include_held=True).summary.held
    with pytest.raises(EmailNotFound):
        store.change_email(BOX, held.email_id, "read", "agent")
    assert store.changes(BOX, "0").emails == ()

    released = store.change_email(BOX, held.email_id, "release", "alice")
    assert not released.held
    assert [e.email_id for e in store.list_emails(BOX, EmailQuery()).emails] == [held.email_id]
    assert [e.email_id for e in store.changes(BOX, "0").emails] == [held.email_id]
    with pytest.raises(EmailNotFound, match="no held email"):
        store.change_email(BOX, held.email_id, "release", "alice")


def test_discarded_mail_stays_invisible(store: SandboxStore) -> None:
    store.deliver(raw(1), "bob@example.com", [BOX], held_for=[BOX])
    [held] = store.list_emails(BOX, EmailQuery(held=True)).emails
    store.change_email(BOX, held.email_id, "discard", "alice")
    assert store.list_emails(BOX, EmailQuery()).emails == ()
    assert store.list_emails(BOX, EmailQuery(held=True)).emails == ()
    with pytest.raises(EmailNotFound):
        store.fetch_email(BOX, held.email_id, include_held=True)


def test_changes_start_at_the_present_and_page_in_order(store: SandboxStore) -> None:
    store.deliver(raw(0), "bob@example.com", [BOX])
    start = store.changes(BOX, None)
    assert start.emails == ()
    for n in range(1, 6):
        store.deliver(raw(n), "bob@example.com", [BOX])
    first = store.changes(BOX, start.cursor, limit=3)
    assert [e.subject for e in first.emails] == ["Message 1", "Message 2", "Message 3"] and first.more
    rest = store.changes(BOX, first.cursor, limit=3)
    assert [e.subject for e in rest.emails] == ["Message 4", "Message 5"] and not rest.more
    assert store.changes(BOX, rest.cursor).emails == ()


def test_emails_of_one_mailbox_are_not_readable_through_another(store: SandboxStore) -> None:
    store.create_mailbox("other@mailgate.local")
    store.deliver(raw(1), "bob@example.com", [BOX])
    [email] = store.list_emails(BOX, EmailQuery()).emails
    with pytest.raises(EmailNotFound):
        store.fetch_email("other@mailgate.local", email.email_id)
    with pytest.raises(EmailNotFound):
        store.fetch_email(BOX, "1 OR 1=1")


class Holding:
    def __init__(self, hold: bool | Exception) -> None:
        self.hold = hold
        self.woken: list[str] = []

    async def holds(self, mailbox: str) -> bool:
        if isinstance(self.hold, Exception):
            raise self.hold
        return self.hold

    async def arrived(self, mailboxes: list[str], since: str | None = None) -> None:
        self.woken += mailboxes


async def test_the_provider_asks_whether_to_hold_and_wakes_only_for_visible_mail(store: SandboxStore) -> None:
    hooks = Holding(hold=True)
    provider = SandboxProvider(store, hooks)
    await provider.receive(raw(1), "bob@example.com", [BOX, "far@example.com"])
    assert hooks.woken == []
    [held] = (await provider.list_emails(BOX, EmailQuery(held=True))).emails
    await provider.change_email(BOX, held.email_id, "release", "alice")
    assert hooks.woken == [BOX]

    hooks.hold = False
    await provider.receive(raw(2), "bob@example.com", [BOX])
    assert hooks.woken == [BOX, BOX]


async def test_when_holding_cannot_be_decided_nothing_is_stored(store: SandboxStore) -> None:
    provider = SandboxProvider(store, Holding(hold=ConnectionError("Temporal is down")))
    with pytest.raises(UnknownHold, match="Temporal is down"):
        await provider.receive(raw(1), "bob@example.com", [BOX])
    assert store.deliveries() == []


def test_a_store_from_before_the_index_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE mailboxes (address TEXT PRIMARY KEY COLLATE NOCASE, created_at TEXT NOT NULL);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT, mailbox TEXT NOT NULL COLLATE NOCASE, folder TEXT NOT NULL,
            message_id TEXT NOT NULL, received_at TEXT NOT NULL, unread INTEGER NOT NULL DEFAULT 1,
            held INTEGER NOT NULL DEFAULT 0, raw BLOB NOT NULL, UNIQUE (mailbox, folder, message_id));
        """
    )
    now = datetime.now(UTC).isoformat()
    db.execute("INSERT INTO mailboxes VALUES (?, ?)", (BOX, now))
    db.execute(
        "INSERT INTO messages (mailbox, folder, message_id, received_at, raw) VALUES (?, 'inbox', ?, ?, ?)",
        (BOX, "<m1@example.com>", now, raw(1)),
    )
    db.commit()
    db.close()
    store = SandboxStore(path)
    [email] = store.list_emails(BOX, EmailQuery()).emails
    assert email.subject == "Message 1" and email.snippet == "hello 1" and email.thread_id.startswith("thread-")
    store.deliver(raw(2, subject="Re: Message 1"), "bob@example.com", [BOX])
    assert len({e.thread_id for e in store.list_emails(BOX, EmailQuery()).emails}) == 1
