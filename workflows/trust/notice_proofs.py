"""Proofs on notices: a NotifyWorkflow started straight in Temporal tells no human anything.

A notice puts text in front of an approver beside real decision links (or an upgrade code), so
its text must be what mailgate's front doors let through. A send's notices carry the proof its
front door made at submission over the mailbox, the requester and the draft as a notice shows
it (``proofs.send_notice_fields``); a draft an approver edited also carries that approval, whose
own proof covers the edits. An upgrade notice, started by a front door, carries a proof over all
of itself. A bulk trash request's notice carries the proof its front door made over the mailbox,
the requester and the count (``trash_notice_fields``), bound to the request's id. The notify
activities check before anything is sent, with the worker's key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflows.models import Warrant
from workflows.notices import Notice, light_draft
from workflows.trust.proofs import (
    NO_PROOF,
    _draft_matches,
    decision_fields,
    fields_of,
    send_notice_fields,
    sign,
    verify,
)


def trash_notice_fields(mailbox: str, requester: str, count: int) -> dict[str, Any]:
    """What a bulk trash's notice proof covers: who asks to trash how many emails of which mailbox."""
    return {"mailbox": mailbox, "requester": requester, "count": count}


def sign_upgrade_notice(key: bytes, notice: Notice, now: datetime) -> Notice:
    return notice.model_copy(update={"proof": sign(key, "notice", notice.notice_id, fields_of(notice), now)})


def notice_problem(key: bytes, notice: Notice) -> str | None:
    """Why this notice was not made by mailgate (nothing of it may reach a human), or None."""
    refused = f"notice {notice.notice_id} {NO_PROOF}"
    if notice.kind == "trash_requested":
        request_id = notice.trash_request_id
        if not request_id or not notice.notice_id.startswith(f"notify-{request_id}-"):
            return refused
        fields = trash_notice_fields(notice.mailbox, notice.requester, notice.email_count)
        return None if verify(key, "notice", request_id, fields, notice.proof) else refused
    if notice.kind == "upgrade_requested":
        return None if verify(key, "notice", notice.notice_id, fields_of(notice), notice.proof) else refused
    send_id, draft = notice.send_id, notice.draft
    if not send_id or draft is None or not notice.notice_id.startswith(f"notify-{send_id}-"):
        return refused
    fields = send_notice_fields(notice.mailbox, notice.requester, draft)
    decision = notice.decision
    if notice.original is not None:
        # An edited draft: the approval's proof covers the edits, the send's the original.
        if decision is None or not verify(key, "decision", send_id, decision_fields(decision), decision.proof):
            return refused
        warrant = Warrant(
            requester=notice.requester, mode="gated_send", original=notice.original, request_proof="", decision=decision
        )
        if not _draft_matches(light_draft(draft), warrant):
            return refused
        fields["draft"] = notice.original
    return None if verify(key, "notice", send_id, fields, notice.proof) else refused
