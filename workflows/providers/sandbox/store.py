"""The sandbox mail store: mailboxes, and delivery into them.

Mail to a sandbox mailbox lands in its inbox; mail to any other address is captured in the
store and never leaves the machine. Each (Message-ID, recipient) pair is stored once, so a
retried delivery can never make a second copy. Inbound mail for a ``gated_all`` mailbox is
stored held: invisible to every agent read until a human releases it. A message carrying
mailgate's notice mark (``workflows/trust/marks.py``) is stored in the ``notices`` folder, which no
agent read includes. Reads are in ``reads.py``, changes and drafts in ``manage.py``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from workflows.mail.parsing import parse_email
from workflows.providers.sandbox.database import now_iso
from workflows.providers.sandbox.index import index_values
from workflows.providers.sandbox.manage import Manage
from workflows.providers.sandbox.reads import Reads
from workflows.providers.sandbox.search import index_text
from workflows.store import Tx


class SandboxStore(Reads, Manage):
    """Synchronous access to the sandbox database; safe to share between threads."""

    def create_mailbox(self, address: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO mailboxes VALUES (?, ?) ON CONFLICT DO NOTHING", (address, now_iso()))

    def is_local(self, address: str) -> bool:
        return bool(self._query("SELECT 1 FROM mailboxes WHERE address = ?", (address,)))

    def local_among(self, addresses: Sequence[str]) -> list[str]:
        """The addresses that are sandbox mailboxes (they get an inbox copy)."""
        local = {row[0].lower() for row in self._query("SELECT address FROM mailboxes")}
        return [a for a in addresses if a.lower() in local]

    def deliver(
        self,
        raw: bytes,
        sender: str,
        recipients: Sequence[str],
        *,
        held_for: Collection[str] = (),
        keep_sent: bool = True,
    ) -> list[str]:
        """Store one copy per recipient; returns the recipients that were new for this Message-ID.

        Copies for ``held_for`` mailboxes are held for a human. ``keep_sent`` files the sender's
        Sent copy (``SandboxProvider`` asks for it only for mailgate's own deliveries). The
        summary columns and the thread are computed here, once, so that nothing reads ``raw``
        to list mail.
        """
        parsed = parse_email(raw)
        message_id = parsed.message_id
        if not message_id:
            raise ValueError("a message without a valid Message-ID cannot be stored")
        to = [a.address for a in parsed.to]
        hold = {a.lower() for a in held_for}
        now = now_iso()
        fresh: list[str] = []
        with self._tx() as db:
            local = {row[0].lower() for row in db.execute("SELECT address FROM mailboxes")}
            for recipient in recipients:
                is_local = recipient.lower() in local
                cursor = db.execute(
                    "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (message_id, recipient, sender, parsed.subject, json.dumps(to), now, int(is_local)),
                )
                if cursor.rowcount == 0:
                    continue
                fresh.append(recipient)
                if is_local:
                    held = recipient.lower() in hold
                    self._insert(db, recipient, "inbox", message_id, now, raw, parsed, unread=True, held=held)
            if keep_sent and sender.lower() in local:
                self._insert(db, sender, "sent", message_id, now, raw, parsed, unread=False, held=False)
        return fresh

    def _insert(
        self,
        db: Tx,
        mailbox: str,
        folder: str,
        message_id: str,
        now: str,
        raw: bytes,
        parsed: Any,
        *,
        unread: bool,
        held: bool,
    ) -> bool:
        """Store one copy (once: False when this folder has that Message-ID already)."""
        if self.marks is not None and self.marks.in_message(raw, parsed.text):
            # mailgate's own notice to a human, wherever it was filed: never shown to an agent.
            folder, held = "notices", True
        exists = db.execute(
            "SELECT 1 FROM messages WHERE mailbox = ? AND folder = ? AND message_id = ?", (mailbox, folder, message_id)
        ).fetchone()
        if exists:
            return False
        values = {
            "mailbox": mailbox,
            "folder": folder,
            "message_id": message_id,
            "received_at": now,
            "unread": int(unread),
            "held": int(held),
            "raw": raw,
            **index_values(db, mailbox, message_id, parsed, held=held),
        }
        names = ", ".join(values)
        marks = ", ".join("?" * len(values))
        row = db.execute(
            f"INSERT INTO messages ({names}) VALUES ({marks}) RETURNING id",  # noqa: S608
            tuple(values.values()),
        ).fetchone()
        assert row is not None
        index_text(db, int(row[0]), values["subject"], values["body"])
        return True
