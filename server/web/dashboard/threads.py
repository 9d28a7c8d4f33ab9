"""Reading sandbox messages for the dashboard: parsed headers and bodies, grouped into threads.

Listings and threads read the sandbox's index (parsed once, when the mail arrived), never the
raw messages: a page must not parse 500 strangers' messages again. Threads join messages that
name each other in Message-ID, In-Reply-To and References (a union-find over ids); the full
JWZ threading belongs to the inbox, this only has to show a reviewer the conversation around
a message. Only the one message a reviewer opens is parsed (bounded, in a worker thread).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage

from workflows.mail.bounds import read_message
from workflows.mail.parsing import parse_email
from workflows.mail.threads import message_ids
from workflows.models import EmailDraft
from workflows.providers.sandbox.store import SandboxStore
from workflows.providers.sandbox.viewer import StoredMessage, message_index, thread_index
from workflows.store import Row


@dataclass(frozen=True)
class ThreadEntry:
    row: int
    mailbox: str
    folder: str
    message_id: str
    sender: str
    to: str
    subject: str
    received_at: datetime
    held: bool
    links: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Parsed:
    entry: ThreadEntry
    text: str
    html: str
    attachments: list[str]
    headers: list[tuple[str, str]]


def _message(raw: bytes) -> EmailMessage:
    parsed, _ = read_message(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _person(name: str, address: str) -> str:
    return f"{name} <{address}>" if name and address else name or address


def indexed_entry(row: Row) -> ThreadEntry:
    """An entry from the sandbox index's columns."""
    links = {row["message_id"], *json.loads(row["refs"])} | ({row["in_reply_to"]} if row["in_reply_to"] else set())
    return ThreadEntry(
        row=row["id"],
        mailbox=row["mailbox"],
        folder=row["folder"],
        message_id=row["message_id"],
        sender=_person(row["sender_name"], row["sender"]),
        to=", ".join(_person(name, address) for name, address in json.loads(row["to_json"])),
        subject=row["subject"],
        received_at=datetime.fromisoformat(row["received_at"]),
        held=bool(row["held"]),
        links=frozenset(links),
    )


def entry(stored: StoredMessage, msg: EmailMessage) -> ThreadEntry:
    linked: set[str] = set()
    for name in ("In-Reply-To", "References"):
        linked |= set(message_ids(str(msg.get(name, ""))))
    return ThreadEntry(
        row=stored.id,
        mailbox=stored.mailbox,
        folder=stored.folder,
        message_id=stored.message_id,
        sender=str(msg.get("From", "")),
        to=str(msg.get("To", "")),
        subject=str(msg.get("Subject", "")),
        received_at=stored.received_at,
        held=stored.held,
        links=frozenset(linked | {stored.message_id}),
    )


def parse(stored: StoredMessage) -> Parsed:
    """The message for the viewer. Its text is what read_email gives an agent (every inline text
    part, joined), never only the first part: a human must see what the agent will."""
    msg = _message(stored.raw)
    text = parse_email(stored.raw).text
    html = ""
    rich = msg.get_body(preferencelist=("html",))
    if rich is not None:
        html = str(rich.get_content())
    names = [part.get_filename() or "(unnamed)" for part in msg.iter_attachments()]
    shown = ("From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References")
    headers = [(name, str(msg[name])) for name in shown if msg[name] is not None]
    return Parsed(entry(stored, msg), text, html, names, headers)


def threads(entries: list[ThreadEntry]) -> list[list[ThreadEntry]]:
    """Group entries into conversations, oldest message first; the liveliest thread first."""
    parent: dict[str, str] = {}

    def find(item: str) -> str:
        while parent.setdefault(item, item) != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for item in entries:
        first, *rest = sorted(item.links)
        for other in rest:
            parent[find(other)] = find(first)
    groups: dict[str, list[ThreadEntry]] = {}
    for item in entries:
        groups.setdefault(find(item.message_id), []).append(item)
    ordered = [sorted(group, key=lambda e: (e.received_at, e.row)) for group in groups.values()]
    return sorted(ordered, key=lambda group: group[-1].received_at, reverse=True)


def mailbox_threads(store: SandboxStore, mailbox: str | None) -> list[list[ThreadEntry]]:
    return threads([indexed_entry(row) for row in message_index(store, mailbox)])


def thread_for(store: SandboxStore, mailbox: str, draft: EmailDraft, message_id: str) -> list[ThreadEntry]:
    """The sandbox conversation a send belongs to: what it replies to, and itself once delivered."""
    wanted = {message_id, *draft.references} | ({draft.in_reply_to} if draft.in_reply_to else set())
    return [indexed_entry(row) for row in thread_index(store, mailbox, wanted)]
