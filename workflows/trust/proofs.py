"""Proofs that a send request, a decision or a loosening came through mailgate's own front doors.

Anything that reaches Temporal can start workflows and send signals and updates, so Temporal
access alone must not be approval power. The front doors (which hold the server's secret key)
sign what they hand to Temporal with a key derived for this purpose only; workers check with the
same key. The key never enters a payload: workflows check a proof through an activity (the
history records only the verdict), and the delivery activity checks the request's and the
decision's proofs again before anything leaves.

A proof is ``<unix milliseconds>.<hex HMAC-SHA256>`` over the kind of claim, the workflow id it is for
and the claim's fields (defaults left out, so a field added later with a default keeps old proofs
valid). The time lets a workflow refuse an old proof replayed from history.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from workflows.models import (
    GATED_MODES,
    Decision,
    DeliveryRequest,
    EmailDraft,
    Frozen,
    OversightMode,
    SendRequest,
    Warrant,
)
from workflows.notices import light_draft

T = TypeVar("T", bound=BaseModel)
Kind = Literal["request", "decision", "mode", "configure", "upgrade", "notice"]
# A proof for a mailbox change is used at once; an older one is a replay from history.
FRESH_FOR = timedelta(minutes=10)
NO_PROOF = "it carries no valid proof from mailgate's front doors (dashboard, CLI, API, links, webhooks)"


def proof_key(secret_key: bytes) -> bytes:
    # A key of its own, so a proof can never be replayed as a link, a session or any other token.
    return hmac.new(secret_key, b"mailgate front-door proofs v1", hashlib.sha256).digest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def fields_of(model: BaseModel, *exclude: str) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude={"proof", *exclude}, exclude_defaults=True)


def _mac(key: bytes, kind: Kind, subject: str, issued: int, fields: dict[str, Any]) -> str:
    return hmac.new(key, _canonical([kind, subject, issued, fields]), hashlib.sha256).hexdigest()


def sign(key: bytes, kind: Kind, subject: str, fields: dict[str, Any], now: datetime) -> str:
    issued = int(now.timestamp() * 1000)
    return f"{issued}.{_mac(key, kind, subject, issued, fields)}"


def issued_at(proof: str | None) -> int | None:
    """When a proof says it was made (unverified: for freshness checks before the MAC)."""
    stamp, dot, _ = (proof or "").partition(".")
    return int(stamp) if dot and stamp.isdigit() else None


def verify(key: bytes, kind: Kind, subject: str, fields: dict[str, Any], proof: str | None) -> bool:
    issued = issued_at(proof)
    if proof is None or issued is None:
        return False
    expected = f"{issued}.{_mac(key, kind, subject, issued, fields)}"
    return hmac.compare_digest(proof.encode(), expected.encode())


# --- what each claim covers -------------------------------------------------------------------


def draft_digests(draft: EmailDraft) -> dict[str, str]:
    """One digest per field, so the delivery activity can check an edited draft field by field
    without the original's contents (attachments stay out of its input)."""
    return {name: hashlib.sha256(_canonical(value)).hexdigest() for name, value in fields_of(draft).items()}


def _request_fields(request: DeliveryRequest, warrant: Warrant) -> dict[str, Any]:
    return _request_claim(
        request.send_id,
        request.mailbox,
        request.from_name,
        request.message_id,
        warrant.requester,
        warrant.mode,
        warrant.approvers,
        warrant.original,
    )


def _request_claim(
    send_id: str,
    mailbox: str,
    from_name: str,
    message_id: str,
    requester: str,
    mode: OversightMode,
    approvers: tuple[str, ...],
    digests: dict[str, str],
) -> dict[str, Any]:
    """What a request's proof covers; the same fields whether signed or checked."""
    return {
        "send_id": send_id,
        "mailbox": mailbox,
        "from_name": from_name,
        "message_id": message_id,
        "requester": requester,
        "mode": mode,
        "approvers": list(approvers),
        "draft": digests,
    }


def warrant_for(request: SendRequest, decision: Decision | None) -> Warrant:
    """What the workflow hands the delivery activity: pure, so it runs inside the workflow."""
    return Warrant(
        requester=request.requester,
        mode=request.policy.mode,
        approvers=request.policy.approvers,
        original=draft_digests(request.draft),
        request_proof=request.proof or "",
        decision=decision,
    )


def sign_request(key: bytes, request: SendRequest, now: datetime) -> SendRequest:
    """The request with its proof and its notices' proof; on every send's path, so the draft is
    digested once (twice with attachments, whose bytes a notice leaves out)."""
    draft, policy = request.draft, request.policy
    digests = draft_digests(draft)
    fields = _request_claim(
        request.send_id,
        request.mailbox,
        request.from_name,
        request.message_id,
        request.requester,
        policy.mode,
        policy.approvers,
        digests,
    )
    proof = sign(key, "request", request.send_id, fields, now)
    # The notices about this send show its draft to humans beside decision links: they carry a
    # proof of their own (workflows/trust/notice_proofs.py), made here, since the send makes them later.
    shown = draft_digests(light_draft(draft)) if draft.attachments else digests
    notice = sign(key, "notice", request.send_id, _notice_claim(request.mailbox, request.requester, shown), now)
    return request.model_copy(update={"proof": proof, "notice_proof": notice})


def send_notice_fields(mailbox: str, requester: str, draft: EmailDraft) -> dict[str, Any]:
    """What a send's notice proof covers: who asks, from where, and the draft as a notice shows it."""
    return _notice_claim(mailbox, requester, draft_digests(light_draft(draft)))


def _notice_claim(mailbox: str, requester: str, shown: dict[str, str]) -> dict[str, Any]:
    return {"mailbox": mailbox, "requester": requester, "draft": shown}


def decision_fields(decision: Decision) -> dict[str, Any]:
    # decided_at is the workflow's own stamp, added after the proof was made; the signature is
    # made over these same fields (workflows/trust/signatures.py).
    return fields_of(decision, "decided_at", "signature")


def sign_decision(key: bytes, send_id: str, decision: Decision, now: datetime) -> Decision:
    return decision.model_copy(update={"proof": sign(key, "decision", send_id, decision_fields(decision), now)})


def _draft_matches(draft: EmailDraft, warrant: Warrant) -> bool:
    expected = dict(warrant.original)
    decision = warrant.decision
    if decision is not None and decision.decision == "approve" and decision.edits is not None:
        # The edited fields as a draft would hold them (an edit back to a default drops out).
        edited = draft_digests(decision.edits.apply(EmailDraft(to=(), subject="", body="")))
        for name in decision.edits.changes():
            if name in edited:
                expected[name] = edited[name]
            else:
                expected.pop(name, None)
    return draft_digests(draft) == expected


def warrant_problem(key: bytes, request: DeliveryRequest, workflow_id: str, mode_now: OversightMode) -> str | None:
    """Why this delivery was not authorised by mailgate's front doors, or None when it was.

    ``mode_now`` is the mailbox's mode as admission just found it: a gated mailbox needs a
    human's approval even for a send submitted while it was looser.
    """
    warrant = request.warrant
    if warrant is None or request.send_id != workflow_id:
        return f"the send request {NO_PROOF}"
    if not verify(key, "request", request.send_id, _request_fields(request, warrant), warrant.request_proof):
        return f"the send request {NO_PROOF}"
    if not _draft_matches(request.draft, warrant):
        return "the email to deliver is not the one requested or approved"
    decision = warrant.decision
    if decision is None and warrant.mode not in GATED_MODES and mode_now not in GATED_MODES:
        return None
    if decision is None or decision.decision != "approve":
        return "the send needs a human's approval and has none"
    if not verify(key, "decision", request.send_id, decision_fields(decision), decision.proof):
        return f"the approval {NO_PROOF}"
    approver = decision.approver.strip().lower()
    if approver == warrant.requester.strip().lower():
        return f"{decision.approver} requested this send and may not approve it"
    approvers = [a.lower() for a in warrant.approvers]
    if approvers and approver not in approvers:
        return f"{decision.approver} is not an approver of {request.mailbox}"
    return None


# --- the check a workflow runs ------------------------------------------------------------------


class ProofCheck(Frozen):
    kind: Kind
    subject: str
    fields: dict[str, Any]
    proof: str | None


class Recent:
    """Proofs of mailbox changes a workflow accepted lately: each counts once, and only while
    fresh, so a loosening replayed from history (after a human tightened again) is refused."""

    def __init__(self, seen: tuple[str, ...] = ()) -> None:
        # Carried across continue-as-new: anyone who reaches Temporal can force one, and must
        # not get a fresh memory to replay a proof into.
        self._seen: dict[str, int] = {p: issued_at(p) or 0 for p in seen}

    def proofs(self) -> tuple[str, ...]:
        return tuple(self._seen)

    def admits(self, proof: str | None, now: datetime) -> bool:
        issued = issued_at(proof)
        if proof is None or issued is None or proof in self._seen:
            return False
        return abs(now.timestamp() * 1000 - issued) <= FRESH_FOR.total_seconds() * 1000

    def remember(self, proof: str, now: datetime) -> None:
        self._seen[proof] = issued_at(proof) or 0
        oldest = (now - FRESH_FOR).timestamp() * 1000
        self._seen = {p: at for p, at in self._seen.items() if at >= oldest}


def decision_check(send_id: str, decision: Decision) -> ProofCheck:
    return ProofCheck(kind="decision", subject=send_id, fields=decision_fields(decision), proof=decision.proof)


def change_check(kind: Kind, mailbox_id: str, change: BaseModel) -> ProofCheck:
    proof = getattr(change, "proof", None)
    return ProofCheck(kind=kind, subject=mailbox_id, fields=fields_of(change), proof=proof)


def sign_change(key: bytes, kind: Kind, mailbox_id: str, change: T, now: datetime) -> T:
    return change.model_copy(update={"proof": sign(key, kind, mailbox_id, fields_of(change), now)})
