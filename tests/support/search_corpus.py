"""A generated mail corpus written straight into a sandbox index (fast: no MIME, no parsing),
with a reference matcher that answers a parsed query over the same records in plain Python."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from workflows.mail.search_query import SearchQuery, words
from workflows.providers.sandbox.search import reindex_text
from workflows.providers.sandbox.store import SandboxStore

VOCABULARY = [
    f"{stem}{suffix}"
    for stem in ("invoice", "report", "budget", "meeting", "launch", "travel", "contract", "review", "deploy", "lunch")
    for suffix in ("", "s", "ing", "ed", "er", "al", "x", "y", "z", "q")
] + [f"w{n}" for n in range(200)]
PEOPLE = [(f"Person {n}", f"p{n}@example{n % 7}.com") for n in range(60)]
FOLDERS = ["inbox"] * 16 + ["sent"] * 3 + ["archive", "trash"]
LABELS = ["work", "home", "urgent", "later"]
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Record:
    row_id: int
    mailbox: str
    folder: str
    subject: str
    body: str
    sender: tuple[str, str]
    to: list[tuple[str, str]]
    received_at: datetime
    unread: bool
    has_attachments: bool
    held: bool
    thread: int
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.subject_words = words(self.subject)
        self.body_words = words(self.body)
        self.people = json.dumps([[name, address] for name, address in self.to]).lower()


def generate(count: int, mailbox: str, seed: int = 17, offset: int = 0) -> list[dict[str, object]]:
    """``offset``: where this batch starts in a larger corpus (its dates follow the batch before)."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        out.append(
            {
                "folder": rng.choice(FOLDERS),
                "subject": " ".join(rng.choices(VOCABULARY, k=rng.randint(2, 6))),
                "body": " ".join(rng.choices(VOCABULARY, k=rng.randint(10, 60))) + ".",
                "sender": rng.choice(PEOPLE),
                "to": rng.sample(PEOPLE, rng.randint(1, 3)),
                "received_at": START + timedelta(minutes=97 * (n + offset)),
                "unread": rng.random() < 0.3,
                "has_attachments": rng.random() < 0.1,
                "held": rng.random() < 0.02,
                "thread": rng.randint(1, count // 5 + 1),
                "labels": rng.sample(LABELS, rng.choice([0, 0, 1, 2])),
                "mailbox": mailbox,
            }
        )
    return out


def bulk_insert(store: SandboxStore, items: list[dict[str, object]]) -> list[Record]:
    """Write the items into the store's index in one transaction; returns them with their ids."""
    records: list[Record] = []
    with store._tx() as db:
        for n, item in enumerate(items):
            sender = item["sender"]
            to = item["to"]
            assert isinstance(sender, tuple) and isinstance(to, list)
            received = item["received_at"]
            assert isinstance(received, datetime)
            row = db.execute(
                "INSERT INTO messages (mailbox, folder, message_id, received_at, unread, held, raw, seq, thread_id,"
                " sender, sender_name, to_json, subject, body, snippet, has_attachments)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    item["mailbox"],
                    item["folder"],
                    f"<bulk{n}-{received.timestamp()}@example.com>",
                    received.isoformat(),
                    int(bool(item["unread"])),
                    int(bool(item["held"])),
                    b"",
                    None if item["held"] else n + 1,
                    item["thread"],
                    sender[1],
                    sender[0],
                    json.dumps([[name, address] for name, address in to]),
                    item["subject"],
                    item["body"],
                    str(item["body"])[:200],
                    int(bool(item["has_attachments"])),
                ),
            ).fetchone()
            assert row is not None
            row_id = int(row[0])
            labels = item["labels"]
            assert isinstance(labels, list)
            db.executemany("INSERT INTO labels VALUES (?, ?)", [(row_id, label) for label in labels])
            records.append(
                Record(
                    row_id=row_id,
                    mailbox=str(item["mailbox"]),
                    folder=str(item["folder"]),
                    subject=str(item["subject"]),
                    body=str(item["body"]),
                    sender=sender,
                    to=to,
                    received_at=received,
                    unread=bool(item["unread"]),
                    has_attachments=bool(item["has_attachments"]),
                    held=bool(item["held"]),
                    thread=int(item["thread"]),  # type: ignore[call-overload]
                    labels=labels,
                )
            )
        reindex_text(db)
    return records


def _has_phrase(tokens: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(tokens[i : i + size] == phrase for i in range(len(tokens) - size + 1))


def matches(record: Record, query: SearchQuery, mailbox: str) -> bool:
    """The reference: what search_email must return, computed without SQL."""
    if record.mailbox != mailbox or record.held:
        return False
    if query.folder is not None:
        if record.folder != query.folder:
            return False
    elif record.folder in ("trash", "drafts"):
        return False
    subject, body = record.subject_words, record.body_words
    for phrase in query.terms:
        if not (_has_phrase(subject, phrase) or _has_phrase(body, phrase)):
            return False
    if not all(_has_phrase(subject, phrase) for phrase in query.subject):
        return False
    if not all(s in record.sender[1].lower() or s in record.sender[0].lower() for s in query.senders):
        return False
    if not all(r in record.people for r in query.recipients):
        return False
    if query.has_attachment and not record.has_attachments:
        return False
    if query.unread is not None and record.unread != query.unread:
        return False
    if not all(label.lower() in record.labels for label in query.labels):
        return False
    if query.after is not None and record.received_at < query.after:
        return False
    if query.before is not None and record.received_at >= query.before:
        return False
    return query.thread is None or query.thread == f"thread-{record.thread}"
