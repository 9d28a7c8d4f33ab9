"""Models of the read side: stored emails as providers list them, and what the inbound
workflows (the mailbox watcher, reply waits, intake) pass around.

Everything that crosses Temporal here is a summary: ids, addresses, subject, snippet.
Bodies and attachments stay in the provider and are read by the front doors directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from workflows.models import EmailAddress, Frozen

# inbox and sent, and the folders manage_email moves mail to (archive, trash, a folder of the agent's).
Folder = str
EmailChange = Literal["read", "release", "discard"]
Action = Literal["archive", "move", "label", "unlabel", "mark_read", "mark_unread", "trash"]


class EmailSummary(Frozen):
    """One stored email, without its body: what listings, waits and intake workflows carry."""

    email_id: str
    mailbox: str
    folder: Folder
    message_id: str
    thread_id: str
    sender: EmailAddress | None = None
    to: tuple[EmailAddress, ...] = ()
    cc: tuple[EmailAddress, ...] = ()
    subject: str = ""
    date: datetime | None = None
    received_at: datetime
    snippet: str = ""
    unread: bool = False
    has_attachments: bool = False
    held: bool = False
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    # Filled only when a query asks for it (threads): the body as text, quotes included.
    text: str | None = None

    def bounded(self) -> EmailSummary:
        """This summary as it crosses Temporal (watcher scans, reply signals, intake inputs): at
        most about 40 KB however large the email's headers, so a batch of them fits a payload.
        Whoever needs every recipient or the whole subject reads the email itself."""

        def cut(text: str, limit: int = SUMMARY_CHARS) -> str:
            return text if len(text) <= limit else text[: limit - 1] + "…"

        def person(p: EmailAddress) -> EmailAddress:
            if len(p.address) <= SUMMARY_CHARS and len(p.name) <= SUMMARY_NAME_CHARS:
                return p
            return EmailAddress(address=cut(p.address), name=cut(p.name, SUMMARY_NAME_CHARS))

        return self.model_copy(
            update={
                "email_id": cut(self.email_id),
                "message_id": cut(self.message_id),
                "thread_id": cut(self.thread_id),
                "sender": person(self.sender) if self.sender else None,
                "to": tuple(person(p) for p in self.to[:SUMMARY_PEOPLE]),
                "cc": tuple(person(p) for p in self.cc[:SUMMARY_PEOPLE]),
                "subject": cut(self.subject),
                "snippet": cut(self.snippet),
                "in_reply_to": cut(self.in_reply_to),
                "references": tuple(cut(r) for r in self.references[-SUMMARY_PEOPLE:]),
                "text": None,
            }
        )


# The caps of EmailSummary.bounded(): characters per field, entries per list.
SUMMARY_CHARS = 1000
SUMMARY_NAME_CHARS = 200
SUMMARY_PEOPLE = 20


class EmailQuery(Frozen):
    folder: Folder | None = "inbox"
    unread_only: bool = False
    since: datetime | None = None
    sender: str | None = None
    text: str | None = None
    search: str | None = None  # the search syntax (workflows/mail/search_query.py)
    thread_id: str | None = None
    message_id: str | None = None
    held: bool = False  # True lists only mail held for a human (gated_all), False only visible mail
    limit: int = 20
    cursor: str | None = None
    oldest_first: bool = False
    with_text: bool = False


class EmailPage(Frozen):
    emails: tuple[EmailSummary, ...]
    next_cursor: str | None = None


class Changes(Frozen):
    """Mail that became visible after a cursor, oldest first (arrivals, and releases of held mail)."""

    emails: tuple[EmailSummary, ...]
    cursor: str
    more: bool = False


@dataclass(frozen=True)
class StoredEmail:
    """An email and its original bytes, for reading and attachments (never crosses Temporal)."""

    summary: EmailSummary
    raw: bytes
    # Attachments a provider leaves empty in ``raw`` (fetched on demand): their real sizes.
    attachment_sizes: dict[str, int] = field(default_factory=dict)


# --- the inbound workflows ------------------------------------------------------------------


class Watch(Frozen):
    """A reply wait registered with a mailbox's watcher."""

    wait_id: str
    message_id: str


class IntakeConfig(Frozen):
    """Start this workflow type for every inbound email (id from the mailbox and Message-ID)."""

    workflow: str
    task_queue: str | None = None


class WatcherState(Frozen):
    mailbox: str
    cursor: str | None = None
    watches: tuple[Watch, ...] = ()
    intake: IntakeConfig | None = None
    poll_interval: timedelta = timedelta(seconds=60)


class ScanRequest(Frozen):
    mailbox: str
    cursor: str | None
    watches: tuple[Watch, ...] = ()
    check_watches: bool = False


class ScanResult(Frozen):
    cursor: str
    inbound: tuple[EmailSummary, ...] = ()
    replies: tuple[tuple[str, EmailSummary], ...] = ()  # (wait_id, the first reply)
    more: bool = False
    # Some waits' replies did not fit this result: scan again and look for them.
    recheck: bool = False


class DispatchRequest(Frozen):
    mailbox: str
    replies: tuple[tuple[str, EmailSummary], ...] = ()
    intake: IntakeConfig | None = None
    inbound: tuple[EmailSummary, ...] = ()


class ReplyWaitRequest(Frozen):
    wait_id: str
    send_id: str
    mailbox: str
    message_id: str
    deadline: datetime


class ReplyWaitResult(Frozen):
    status: Literal["replied", "timeout"]
    send_id: str
    reply: EmailSummary | None = None
