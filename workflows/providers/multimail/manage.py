"""manage_email and drafts on a MultiMail mailbox, as far as MultiMail's published API goes.

MultiMail's OpenAPI document (2.0.0) has key-value tags on an email (``GET``/``PUT .../tags``,
``DELETE .../tags/{key}``) and marks an unread email read when it is fetched. So ``label`` adds a
tag (the label is the key), ``unlabel`` deletes it and ``mark_read`` fetches the email. It has no
call that archives, moves, trashes or marks an email unread (its ``archived`` and ``deleted``
statuses cannot be set through the API), and no drafts: those are refused up front, each with
what to do instead. Held mail (mailgate's ``gated_all`` hold, MultiMail's own hold) and
mailgate's notices are not found, exactly as for reads.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import httpx

from workflows.providers.base import EmailNotFound
from workflows.providers.multimail.account import checked_id
from workflows.providers.multimail.client import LIST_LIMIT_MAX, MultiMailError
from workflows.providers.multimail.reading import Reading
from workflows.read_models import Action, EmailSummary, StoredEmail

# mailgate's own tags (mailgate_send_id ties a sent email to its send): never an agent's label.
RESERVED_TAG_PREFIX = "mailgate_"
LABEL_VALUE = "true"  # a label is a tag whose key is the label
# How many listing pages a lookup walks before reading the email itself (which marks it read).
LOOKUP_PAGES = 3

UNSUPPORTED: dict[str, str] = {
    "archive": (
        "MultiMail's API has no archive call (its 'archived' status cannot be set through the API); "
        "label the email instead, e.g. action='label', label='archive'"
    ),
    "move": "MultiMail mailboxes have no folders; label the email instead, e.g. action='label', label='Receipts'",
    "trash": (
        "MultiMail's API cannot trash or delete an email; label it instead, e.g. action='label', label='trash', "
        "and a human can remove it at MultiMail"
    ),
    "mark_unread": (
        "MultiMail's API cannot mark an email unread (it marks mail read when it is read, with no call to undo "
        "that); label it instead, e.g. action='label', label='unread'"
    ),
}
NO_DRAFTS = (
    "MultiMail mailboxes have no drafts: MultiMail's API keeps no unsent email for a human to finish in "
    "their own mail client. To have a human check an email before it goes out, use durable_send "
    "(or reply_email) in a gated_send or gated_all mailbox: it waits for a human's approval"
)


class Managing(Reading):
    """MultiMailProvider's manage_email actions and its (absent) drafts."""

    def unsupported(self, action: Action) -> str | None:
        return UNSUPPORTED.get(action)

    async def manage(self, mailbox: str, email_id: str, action: Action, target: str | None, actor: str) -> str:
        refusal = self.unsupported(action)
        if refusal:
            raise ValueError(refusal)
        try:
            return await self._manage(mailbox, checked_id(email_id), action, target)
        except MultiMailError as exc:
            if exc.status_code == 404:
                raise EmailNotFound(f"no email {email_id} in mailbox {mailbox}") from exc
            raise ValueError(f"MultiMail answered {exc.status_code or 'unreadably'}: {exc}; nothing changed") from exc
        except httpx.HTTPError as exc:
            raise ValueError(f"cannot reach MultiMail ({exc or type(exc).__name__}); try again later") from exc

    async def _manage(self, mailbox: str, email_id: str, action: Action, target: str | None) -> str:
        if action in ("label", "unlabel"):
            assert target is not None
            # Folded as a tag store might fold it: Mailgate_send_id or a fullwidth one is no label either.
            if unicodedata.normalize("NFKC", target).casefold().startswith(RESERVED_TAG_PREFIX):
                raise ValueError(f"tags starting with {RESERVED_TAG_PREFIX} are mailgate's own; choose another label")
            if target.strip(".") == "":
                raise ValueError(f"label {target!r} cannot be a MultiMail tag: it would be read as a step in its URL")
        summary, fetched_unread = await self._look_up(mailbox, email_id)
        box = self.config.mailbox_id
        if action == "mark_read":
            if fetched_unread is not None:  # the lookup fetched it, which marked it read
                return "marked read" if fetched_unread else "already read"
            if not summary.unread:
                return "already read"
            await self.client.get_email(box, email_id)  # documented: fetching marks an unread email read
            return "marked read"
        assert target is not None
        tags = await self.client.get_tags(box, email_id)
        note = " (MultiMail marked it read when mailgate looked it up)" if fetched_unread else ""
        if action == "label":
            if target in tags:
                return f"already labelled {target}{note}"
            # PUT replaces every tag (the document), so the others go along unchanged.
            await self.client.set_tags(box, email_id, {**tags, target: LABEL_VALUE})
            return f"labelled {target}{note}"
        if target not in tags:
            return f"had no label {target}{note}"
        await self.client.delete_tag(box, email_id, target)
        return f"label {target} removed{note}"

    async def _look_up(self, mailbox: str, email_id: str) -> tuple[EmailSummary, bool | None]:
        """The email as an agent may see it, or EmailNotFound (held, discarded, a notice, absent).

        Looked for in the newest listing pages first: listing changes nothing, while fetching
        the email marks it read. Only an email older than those pages is fetched; then the
        second value says whether it was unread before (None: not fetched)."""
        cursor = None
        for _ in range(LOOKUP_PAGES):
            page = await self.client.list_emails(self.config.mailbox_id, cursor=cursor, limit=LIST_LIMIT_MAX)
            items: list[dict[str, Any]] = [e.data() for e in page.emails if e.id == email_id]
            if items:
                visible = await self._visible(items, held=False)
                if not visible:
                    raise EmailNotFound(f"no email {email_id} in mailbox {mailbox}")
                return visible[0], None
            cursor = page.cursor
            # Ids sort in arrival order: a page that reaches below the id has passed it.
            if not cursor or not page.emails or page.emails[-1].id < email_id:
                break
        email, summary = await self._email(mailbox, email_id, include_held=False)
        return summary, email.status == "unread"

    # Drafts: MultiMail has none (see NO_DRAFTS); list_drafts lists none (the base's answer).

    async def save_draft(self, mailbox: str, raw: bytes, draft_id: str | None = None) -> str:
        raise ValueError(NO_DRAFTS)

    async def draft(self, mailbox: str, draft_id: str) -> StoredEmail:
        raise EmailNotFound(f"no draft {draft_id}: {NO_DRAFTS}")

    async def delete_draft(self, mailbox: str, draft_id: str) -> None:
        raise EmailNotFound(f"no draft {draft_id}: {NO_DRAFTS}")
