"""Reading sandbox messages for the dashboard: parsed headers and bodies, grouped into threads.

Threads join messages that name each other in Message-ID, In-Reply-To and References (a
union-find over ids); the full JWZ threading belongs to the inbox, this only has to show a
reviewer the conversation around a message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from workflows.models import EmailDraft
from workflows.providers.sandbox import SandboxStore, StoredMessage, stored_messages

_IDS = re.compile(r"<[^<>\s]+>")


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
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def entry(stored: StoredMessage, msg: EmailMessage | None = None) -> ThreadEntry:
    msg = msg or _message(stored.raw)
    linked = set(_IDS.findall(str(msg.get("In-Reply-To", "")))) | set(_IDS.findall(str(msg.get("References", ""))))
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
    msg = _message(stored.raw)
    text = html = ""
    plain = msg.get_body(preferencelist=("plain",))
    if plain is not None:
        text = str(plain.get_content())
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
    return threads([entry(m) for m in stored_messages(store, mailbox)])


def thread_for(store: SandboxStore, mailbox: str, draft: EmailDraft, message_id: str) -> list[ThreadEntry]:
    """The sandbox conversation a send belongs to: what it replies to, and itself once delivered."""
    wanted = {message_id, *draft.references} | ({draft.in_reply_to} if draft.in_reply_to else set())
    for group in mailbox_threads(store, mailbox):
        if any(e.links & wanted for e in group):
            return group
    return []
