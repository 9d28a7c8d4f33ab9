"""Tidying a mailbox for an agent: archive, move, label, read flags and trash, under oversight.

read_only changes nothing (each refusal says why); in gated modes a trash of more ids than
``trash_approval_over`` in one call waits for a human (server/trash_approvals.py) and everything
else is allowed; monitored and autonomous allow all. Every
call that changed something is in the mailbox's audit log with the agent, the ids and folders.
Held inbound mail is not found: it stays invisible until a human releases it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel

from server.errors import Conflict, InvalidInput
from server.mailboxes import Mailboxes
from server.settings import Settings
from server.trash_approvals import TrashApprovals
from server.validation import parse_mailbox
from workflows.models import GATED_MODES, MailboxConfig
from workflows.providers.base import EmailNotFound, ProviderSet
from workflows.read_models import Action

MAX_IDS = 100
FOLDER = re.compile(r"^[\w.\- /]{1,100}$")
RESERVED_FOLDERS = {"notices", "discarded", "drafts", "sent"}
LABEL = re.compile(r"^[\w.\-/]{1,64}$")
ACTIONS: tuple[Action, ...] = ("archive", "move", "label", "unlabel", "mark_read", "mark_unread", "trash")


class ManageOutcome(BaseModel):
    email_id: str
    ok: bool
    result: str


class ManageResult(BaseModel):
    mailbox: str
    action: Action
    results: list[ManageOutcome]
    changed: int
    # A trash that waits for a human: its request id and status (pending_approval, trashed, ...).
    approval_id: str | None = None
    approval_status: str | None = None


def _target(action: Action, folder: str | None, label: str | None) -> str | None:
    if action == "move":
        name = (folder or "").strip()
        if not name:
            raise InvalidInput("folder: move needs the folder to move to, such as folder='Receipts'")
        if not FOLDER.match(name) or ".." in name or name.lower() in RESERVED_FOLDERS:
            raise InvalidInput(
                f"folder: {name!r} cannot be a target; use letters, digits, spaces, . - _ / "
                f"and none of {', '.join(sorted(RESERVED_FOLDERS))}"
            )
        return name.lower() if name.lower() in ("inbox", "archive", "trash") else name
    if action in ("label", "unlabel"):
        name = (label or "").strip()
        if not LABEL.match(name):
            raise InvalidInput(
                f"label: {action} needs a label of 1 to 64 letters, digits, . - _ /, such as label='work'"
            )
        return name
    return None


class Manager:
    def __init__(self, settings: Settings, providers: ProviderSet, mailboxes: Mailboxes, trash: TrashApprovals) -> None:
        self._settings = settings
        self._providers = providers
        self._mailboxes = mailboxes
        self._trash = trash

    async def manage(
        self,
        mailbox: str,
        email_ids: Sequence[str],
        action: Action,
        *,
        folder: str | None = None,
        label: str | None = None,
        actor: str = "agent",
    ) -> ManageResult:
        address = parse_mailbox(mailbox)
        if action not in ACTIONS:
            raise InvalidInput(f"action: one of {', '.join(ACTIONS)}")
        ids = list(dict.fromkeys(i.strip() for i in email_ids))
        if not 1 <= len(ids) <= MAX_IDS:
            raise InvalidInput(f"email_ids: from 1 to {MAX_IDS} ids per call")
        target = _target(action, folder, label)
        config = await self._mailboxes.config(address)
        if config.mode == "read_only":
            raise Conflict(
                f"mailbox {address} is read_only: no action changes its mail (not even {action}). "
                "Only a human can change its mode (request_upgrade asks one)."
            )
        provider = self._providers.for_mailbox(address)
        refusal = None
        if action == "move" and target is not None:
            try:
                # A move to the trash (any folder the provider uses as one) is a trash: the same
                # approval over trash_approval_over ids.
                if await provider.is_trash(address, target):
                    action, target = "trash", None
            except ValueError as exc:  # it cannot tell which folder is its trash: nothing moves
                refusal = str(exc)
        refusal = refusal or provider.unsupported(action)
        if refusal:  # the provider has no such action: said per id, and no human is asked for a trash
            refused = [ManageOutcome(email_id=i, ok=False, result=refusal) for i in ids]
            return ManageResult(mailbox=address, action=action, results=refused, changed=0)
        limit = self._settings.trash_approval_over
        if action == "trash" and config.mode in GATED_MODES and len(ids) > limit:
            return await self._trash_by_approval(address, ids, config, actor)
        results: list[ManageOutcome] = []
        for email_id in ids:
            try:
                done = await provider.manage(address, email_id, action, target, actor)
                results.append(ManageOutcome(email_id=email_id, ok=True, result=done))
            except EmailNotFound:
                results.append(ManageOutcome(email_id=email_id, ok=False, result="not found in this mailbox"))
            except ValueError as exc:
                results.append(ManageOutcome(email_id=email_id, ok=False, result=str(exc)))
        changed = [r.email_id for r in results if r.ok and not r.result.startswith(("already", "had no"))]
        if changed:
            where = f" -> {target}" if target else ""
            detail = f"{action}{where}: {', '.join(changed)}"
            await self._mailboxes.record_action(address, f"email_{action}", actor, detail)
        return ManageResult(mailbox=address, action=action, results=results, changed=len(changed))

    async def _trash_by_approval(self, address: str, ids: list[str], config: MailboxConfig, actor: str) -> ManageResult:
        """More than trash_approval_over ids in a gated mailbox: a human decides, durably."""
        state = await self._trash.request(address, ids, config, requester=actor)
        waiting = {
            "pending_approval": f"waits for a human's approval ({state.request_id}); nothing moved yet",
            "trashing": f"approved by a human ({state.request_id}); moving to the trash",
            "rejected": f"a human rejected this trash ({state.request_id}): {state.reason}; nothing moved",
            "expired": f"nobody approved this trash in time ({state.request_id}); nothing moved",
            "blocked": f"this trash was refused ({state.request_id}): {state.reason}",
        }
        if state.status == "trashed":
            results = [ManageOutcome(email_id=o.email_id, ok=o.ok, result=o.result) for o in state.outcomes]
            changed = sum(1 for r in results if r.ok and not r.result.startswith("already"))
        else:
            results = [ManageOutcome(email_id=i, ok=False, result=waiting[state.status]) for i in ids]
            changed = 0
        return ManageResult(
            mailbox=address,
            action="trash",
            results=results,
            changed=changed,
            approval_id=state.request_id,
            approval_status=state.status,
        )
