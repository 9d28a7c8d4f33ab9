"""A mailbox at MultiMail (multimail.dev), through mailgate's own client (``client.py``).

Sending: a new email through the send endpoint, a reply to a MultiMail email through the reply
endpoint (so MultiMail sets the threading headers), both with ``idempotency_key`` = the send
id, which is fixed per send: a retried activity gets MultiMail's "already_sent" answer and the
same email id. MultiMail forgets keys after 24 hours, so a retry that late first looks for the
email by its ``mailgate_send_id`` tag and never sends blind. The tag also lets a webhook naming
only MultiMail's email id be traced to the send. The reply endpoint takes no ``to`` or
``subject``: a reply whose recipients or subject differ from MultiMail's own (a human edited
them) goes out through the send endpoint instead, edits kept, rather than losing them. If the
MultiMail mailbox is gated, the receipt says ``held``: the send then waits for MultiMail's human
(webhook, or polling as a fallback).

Reading: MultiMail's JSON emails are turned into RFC 5322 bytes (headers, text, attachments)
so the inbox service treats them like any other mail. MultiMail ids are opaque; the Message-ID
of a MultiMail email is made from its id (the API does not expose the real one), which lets a
reply find the email it answers. Attachments are listed by name and size when an email is read
and downloaded only when one is asked for (``fetch_attachment``).

New inbound mail is walked page by page, oldest first, so none is skipped however much arrived
between two scans. Mail MultiMail itself holds for its human (``pending_inbound_approval``) is
remembered (``HoldStore.waiting``) and reported when that human approves it.

Holding: MultiMail holds inbound mail only by its own mode. mailgate's ``gated_all`` is enforced
here too: each inbound email is checked against mailgate's mode when mailgate first sees it, and
the answer kept in a local file (``holds.py``). And no read returns an email that
carries mailgate's notice mark (``workflows/trust/marks.py``), whichever direction it went.

Managing: labels are MultiMail tags and ``mark_read`` reads the email; MultiMail's API cannot
archive, move, trash or mark unread, nor keep drafts, so those are refused with what to do instead.
"""

from __future__ import annotations

import asyncio

from workflows.providers.base import EmailNotFound, PermanentDeliveryError
from workflows.providers.multimail.manage import Managing
from workflows.providers.multimail.sending import Sending


class MultiMailProvider(Sending, Managing):
    """A MultiMail mailbox: sending in ``sending.py``, new mail in ``inbound.py``, reads in
    ``reading.py``, manage_email and drafts in ``manage.py``."""

    async def create_mailbox(self, address: str) -> None:
        """The mailbox must exist at MultiMail already (creating one there needs an operator's code)."""
        try:
            await self._mode()
        except PermanentDeliveryError as exc:
            raise EmailNotFound(str(exc)) from exc

    async def aclose(self) -> None:
        await self.client.close()
        await asyncio.to_thread(self.holds.close)
