"""What MailboxWorkflow (``workflows/mailbox.py``) carries and takes: MailboxState, which it
carries across continue-as-new, the records in it (admissions, reviews, upgrade requests), the
inputs of its updates, and the memo front doors read its configuration from.

The bounds of each collection are beside the workflow that enforces them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from workflows.models import AuditEvent, Frozen, MailboxConfig, OversightMode


class Admitted(Frozen):
    """A send the mailbox let out and the mode it was let out in: its answer, should it ask again."""

    send_id: str
    at: datetime
    mode: OversightMode | None = None  # None in state carried from before the mode was kept


class ReviewItem(Frozen):
    send_id: str
    at: datetime
    acked_by: str | None = None
    acked_at: datetime | None = None


class UpgradeRequest(Frozen):
    request_id: str
    mode: OversightMode
    reason: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    wrong_tries: int = 0
    status: Literal["pending", "applied", "void", "expired"] = "pending"

    def as_of(self, now: datetime) -> UpgradeRequest:
        """The request as it stands at `now`: a lapsed one is expired even before the workflow,
        which marks it only when a code is next presented, has written so."""
        if self.status == "pending" and self.expires_at <= now:
            return self.model_copy(update={"status": "expired"})
        return self


class Reconfigure(Frozen):
    config: MailboxConfig
    actor: str
    proof: str | None = None


class ActionNote(Frozen):
    """An agent's action on stored mail (manage_email, drafts), for the audit log."""

    kind: str
    actor: str
    detail: str


class ReviewAck(Frozen):
    send_id: str
    actor: str


class UpgradeAsk(Frozen):
    request_id: str
    mode: OversightMode
    reason: str
    requested_by: str


class UpgradeRedeem(Frozen):
    """The front door checks the code (it holds the key); the workflow counts tries and applies."""

    request_id: str | None
    actor: str
    proof: str | None = None


class MailboxState(Frozen):
    config: MailboxConfig
    created_by: str
    created_at: datetime
    provisioned: bool = False
    admissions: tuple[Admitted, ...] = ()
    reviews: tuple[ReviewItem, ...] = ()
    upgrades: tuple[UpgradeRequest, ...] = ()
    audit: tuple[AuditEvent, ...] = ()
    # Loosening proofs accepted in the last minutes (proofs.Recent), so none replays after a continue-as-new.
    recent_proofs: tuple[str, ...] = ()


def mailbox_memo(config: MailboxConfig) -> dict[str, Any]:
    return {
        "address": config.address,
        "mode": config.mode,
        "display_name": config.display_name,
        "provider": config.provider,
        "config": config,
    }
