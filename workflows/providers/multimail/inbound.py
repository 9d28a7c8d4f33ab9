"""Inbound MultiMail mail as mailgate sees it: new mail walked page by page, oldest first; mail
MultiMail holds for its own human remembered until it is let through; mailgate's own
``gated_all`` hold decided on first sight and kept in ``holds.py``; notices never shown."""

from __future__ import annotations

import asyncio
from typing import Any

from workflows.providers.multimail.account import (
    MULTIMAIL_HOLDS,
    MultiMailAccount,
    checked_id,
    message_id_of,
    parse_people,
    when,
)
from workflows.providers.multimail.client import LIST_LIMIT_MAX, MultiMailError
from workflows.providers.multimail.holds import State
from workflows.read_models import Changes, EmailSummary

NOTICE_SUBJECT = "[mailgate]"  # notices start so; only those are read in full to look for the mark


class Inbound(MultiMailAccount):
    """Summaries, visibility and new mail of a MultiMail mailbox."""

    def _summary(self, item: dict[str, Any], *, held_here: bool = False) -> EmailSummary:
        email_id = str(item.get("id"))
        direction = item.get("direction")
        status = str(item.get("status") or "")
        sender = parse_people(item.get("from"))
        return EmailSummary(
            email_id=email_id,
            mailbox=self.config.address,
            folder="sent" if direction == "outbound" else "inbox",
            message_id=message_id_of(email_id),
            thread_id=str(item.get("thread_id") or email_id),
            sender=sender[0] if sender else None,
            to=parse_people(item.get("to")),
            cc=parse_people(item.get("cc")),
            subject=str(item.get("subject") or ""),
            received_at=when(item.get("received_at")),
            snippet=" ".join(str(item.get("markdown") or "").split())[:200],
            unread=status == "unread",
            has_attachments=bool(item.get("has_attachments")),
            held=held_here or status in MULTIMAIL_HOLDS,
            text=str(item["markdown"]) if item.get("markdown") is not None else None,
        )

    async def _states(self, items: list[dict[str, Any]]) -> dict[str, State]:
        """mailgate's hold state of each inbound item, deciding it (by mailgate's mode) on first sight."""
        inbound = [i for i in items if i.get("direction") == "inbound" and i.get("id")]
        states = await asyncio.to_thread(self.holds.states, [str(i["id"]) for i in inbound])
        new = [i for i in inbound if str(i["id"]) not in states]
        if new:
            # Raises when mailgate cannot tell: better no answer than held mail shown.
            state: State = "held" if await self.hooks.holds(self.config.address) else "visible"
            await asyncio.to_thread(self.holds.record, new, state)
            states = await asyncio.to_thread(self.holds.states, [str(i["id"]) for i in inbound])
        return states

    async def _marked(self, item: dict[str, Any]) -> bool:
        """Is this one of mailgate's notices (its text carries the mark)? Never shown to an agent."""
        if self.marks is None:
            return False
        text = item.get("markdown")
        if text is None:
            if not str(item.get("subject") or "").startswith(NOTICE_SUBJECT):
                return False
            full = await self.client.get_email(self.config.mailbox_id, checked_id(str(item.get("id"))))
            text = full.markdown
        return self.marks.in_text(str(text or ""))

    async def _visible(self, items: list[dict[str, Any]], *, held: bool) -> list[EmailSummary]:
        """The items an agent (``held`` False) or a human deciding held mail (True) may see."""
        states = await self._states(items)
        shown = []
        for item in items:
            state = states.get(str(item.get("id")))
            if state == "discarded" or await self._marked(item):
                continue
            summary = self._summary(item, held_here=state == "held")
            if summary.held == held:
                shown.append(summary)
        return shown

    async def changes(self, mailbox: str, cursor: str | None, limit: int = 100) -> Changes:
        """Inbound mail after ``cursor`` ("<last MultiMail id>|<last release>"), oldest first, then
        mail MultiMail's human approved and mail mailgate's human released since."""
        box = self.config.mailbox_id
        if cursor is None:
            latest = await self.client.list_emails(box, direction="inbound", limit=1)
            last = latest.emails[0].id if latest.emails else ""
            return Changes(emails=(), cursor=f"{last}|{await asyncio.to_thread(self.holds.last_release)}")
        since, _, released = cursor.partition("|")
        release_seq = int(released) if released.isdigit() else await asyncio.to_thread(self.holds.last_release)
        # MultiMail answers newest first, a page at a time: walk every page back to the cursor,
        # then take the oldest, so nothing is skipped however much arrived between two scans.
        new: dict[str, dict[str, Any]] = {}
        page_cursor = None
        while True:
            page = await self.client.list_emails(
                box, direction="inbound", since_id=since or None, cursor=page_cursor, limit=LIST_LIMIT_MAX
            )
            for item in page.emails:
                if not since or item.id > since:
                    new[item.id] = item.data()
            page_cursor = page.cursor
            if not page_cursor or not page.emails:
                break
        items = [new[key] for key in sorted(new)][:limit]
        more = len(new) > limit
        since = items[-1]["id"] if items else since
        # Held by MultiMail for its human: not lost when the cursor passes it, but remembered.
        waiting = [i for i in items if i.get("status") in MULTIMAIL_HOLDS]
        if waiting:
            await asyncio.to_thread(self.holds.wait, waiting)
        visible = await self._visible([i for i in items if i.get("status") not in MULTIMAIL_HOLDS], held=False)
        visible += await self._approved_at_multimail()
        freed = await asyncio.to_thread(self.holds.released_after, release_seq, limit)
        if freed:
            release_seq = freed[-1][0]
            visible += [self._summary(item) for _, item in freed]
        more = more or len(freed) >= limit
        return Changes(emails=tuple(visible), cursor=f"{since}|{release_seq}", more=more)

    async def _approved_at_multimail(self) -> list[EmailSummary]:
        """Inbound mail MultiMail held for its human and has let through since the last look."""
        waiting = await asyncio.to_thread(self.holds.waiting)
        if not waiting:
            return []
        # One listing says which are still held; only those that left it are read one by one.
        still: set[str] = set()
        cursor = None
        while True:
            page = await self.client.list_emails(
                self.config.mailbox_id,
                direction="inbound",
                status="pending_inbound_approval",
                cursor=cursor,
                limit=LIST_LIMIT_MAX,
            )
            still |= {e.id for e in page.emails}
            cursor = page.cursor
            if not cursor or not page.emails:
                break
        shown: list[EmailSummary] = []
        for email_id in waiting:
            if email_id in still:
                continue
            try:
                email = await self.client.get_email(self.config.mailbox_id, email_id)
            except MultiMailError as exc:
                if exc.status_code != 404:
                    raise
                await asyncio.to_thread(self.holds.done_waiting, email_id)
                continue
            if email.status in MULTIMAIL_HOLDS:
                continue
            await asyncio.to_thread(self.holds.done_waiting, email_id)
            if email.status in ("unread", "read", "archived"):
                shown += await self._visible([email.data()], held=False)
        return shown
