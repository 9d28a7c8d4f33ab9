"""Pydantic models shared by the workflows, the activities and the front doors.

Everything here crosses the Temporal boundary, so it must stay plain data: no secrets, no
clients, no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OversightMode = Literal["read_only", "gated_all", "gated_send", "monitored", "autonomous"]
# Strictest first: an index further right is looser.
MODES: tuple[OversightMode, ...] = ("read_only", "gated_all", "gated_send", "monitored", "autonomous")
GATED_MODES: frozenset[OversightMode] = frozenset({"gated_all", "gated_send"})

SendStatus = Literal[
    "scheduled",
    "pending_approval",
    "sending",
    "sent",
    "rejected",
    "expired",
    "cancelled",
    "blocked",
    "failed",
]
FINAL_STATUSES: frozenset[SendStatus] = frozenset({"sent", "rejected", "expired", "cancelled", "blocked", "failed"})

Role = Literal["agent", "human"]


def strictness(mode: OversightMode) -> int:
    """0 for the strictest mode; larger is looser."""
    return MODES.index(mode)


def is_looser(new: OversightMode, old: OversightMode) -> bool:
    return strictness(new) > strictness(old)


class Frozen(BaseModel):
    """What crosses Temporal (payloads, memos, query results): immutable, and deaf to fields it
    does not know, which it drops. In a rolling upgrade a newer front door or worker adds one,
    and an older worker must still run the workflow. Bodies from people and agents are refused
    for unknown fields where they arrive (server/), not here."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class EmailAddress(Frozen):
    address: str
    name: str = ""

    def __str__(self) -> str:
        from email.headerregistry import Address

        return str(Address(display_name=self.name, addr_spec=self.address))


class Attachment(Frozen):
    filename: str
    content_type: str
    content_b64: str
    size: int


BodyFormat = Literal["text", "markdown", "html"]


class EmailDraft(Frozen):
    """The email as the agent asked for it, or as a human approved it."""

    to: tuple[EmailAddress, ...]
    cc: tuple[EmailAddress, ...] = ()
    bcc: tuple[EmailAddress, ...] = ()
    subject: str
    body: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    # Fixed at submission from the mailbox's settings, so the approver sees (and the proof and
    # the content hash cover) exactly the From and signature that go out.
    from_alias: EmailAddress | None = None
    signature: str = ""
    body_format: BodyFormat = "text"
    # A reply's quote of the email it answers: the "On ..., ... wrote:" line, then its text.
    # Rendered below the new text and the signature, each line quoted.
    quote: str = ""

    def recipients(self) -> tuple[EmailAddress, ...]:
        return self.to + self.cc + self.bcc

    def without_contents(self) -> EmailDraft:
        """Attachment names and sizes only: what states and query answers carry, far below
        Temporal's 2 MB payload limit (the contents are in the workflow's input)."""
        if not any(a.content_b64 for a in self.attachments):
            return self
        kept = tuple(a.model_copy(update={"content_b64": ""}) for a in self.attachments)
        return self.model_copy(update={"attachments": kept})


class Edits(Frozen):
    subject: str | None = None
    body: str | None = None
    to: tuple[EmailAddress, ...] | None = None
    cc: tuple[EmailAddress, ...] | None = None
    bcc: tuple[EmailAddress, ...] | None = None

    def changes(self) -> dict[str, object]:
        return {name: value for name in type(self).model_fields if (value := getattr(self, name)) is not None}

    def apply(self, draft: EmailDraft) -> EmailDraft:
        return draft.model_copy(update=self.changes())


class MailboxPolicy(Frozen):
    """What a send is checked against, copied from the mailbox when the send is submitted."""

    mode: OversightMode
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()


class SendRequest(Frozen):
    """Input of SendEmailWorkflow: everything the send needs, fixed at submission."""

    send_id: str
    mailbox: str
    from_name: str = ""
    requester: str
    draft: EmailDraft
    message_id: str
    content_hash: str
    policy: MailboxPolicy
    requested_at: datetime
    approval_timeout: timedelta
    send_at: datetime | None = None
    approve_at_send_time: bool = False
    # Whether anyone was there to notify when it was submitted (a webhook, or approvers and
    # reviewers with addresses); without, the send starts no notice workflows at all.
    notify: bool = True
    # The front door's proof that it made this request (workflows/trust/proofs.py); never a secret.
    proof: str | None = None
    # The public key that checks decisions' signatures in the workflow (workflows/trust/signatures.py).
    decision_key: str | None = None
    # The mailbox's Slack channel when the server has a Slack app: each approval round posts there.
    slack_channel: str | None = None
    # The front door's proof for the notices about this send (workflows/trust/notice_proofs.py).
    notice_proof: str | None = None


class Decision(Frozen):
    decision: Literal["approve", "reject"]
    approver: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)
    edits: Edits | None = None
    channel: str = "api"
    # Signals may be delivered more than once (webhook retries); the id makes them idempotent.
    decision_id: str | None = None
    decided_at: datetime | None = None
    # The front door's proof that a person decided this (workflows/trust/proofs.py); never a secret.
    proof: str | None = None
    # The same, as a signature the send workflow verifies itself (workflows/trust/signatures.py).
    signature: str | None = None


class AuditEvent(Frozen):
    at: datetime
    kind: str
    actor: str
    detail: str = ""
    send_id: str | None = None
    mailbox: str | None = None


class Admission(Frozen):
    """The mailbox's answer, just before delivery, to "may this send go out now?"."""

    outcome: Literal["ok", "blocked", "needs_approval"]
    mode: OversightMode
    reason: str = ""


class AdmitRequest(Frozen):
    send_id: str
    recipients: tuple[EmailAddress, ...]
    approved_by: str | None


# The longest send id a mailbox admits (mailgate's own are 25 characters); it bounds the
# mailbox's remembered admissions, and one bad id must not fail a whole batch.
SEND_ID_CHARS = 200


class AdmitBatch(Frozen):
    """Admissions gathered by one worker into one update of the mailbox (workflows/activities/admission.py)."""

    requests: tuple[AdmitRequest, ...]


class Warrant(Frozen):
    """The front doors' proofs the delivery activity checks before anything leaves: the
    request's (over its fields and one digest per draft field) and the approval's."""

    requester: str
    mode: OversightMode
    approvers: tuple[str, ...] = ()
    original: dict[str, str]
    request_proof: str
    decision: Decision | None = None


class DeliveryRequest(Frozen):
    send_id: str
    mailbox: str
    from_name: str = ""
    draft: EmailDraft
    message_id: str
    date: datetime
    # A message mailgate itself sends to humans (a notice with decision links): never gated, and
    # kept out of the mailbox's Sent folder, where the agent could read the links.
    system: bool = False
    warrant: Warrant | None = None


class DeliveryReceipt(Frozen):
    message_id: str
    provider_id: str = ""
    recipients: tuple[str, ...] = ()
    # Accepted but held by the provider's own oversight (a gated MultiMail mailbox): its human
    # decides later, and the send asks again every ``recheck_after`` (or when a webhook says so).
    held: bool = False
    recheck_after: timedelta | None = None


class DeliveryAttempt(Frozen):
    """The mailbox's answer and, when it said yes, the delivery's receipt."""

    admission: Admission
    receipt: DeliveryReceipt | None = None


class HeldOutcome(Frozen):
    """Where a message held by the provider's oversight stands now."""

    status: Literal["pending", "sent", "rejected", "cancelled", "failed"]
    detail: str = ""
    decided_by: str = ""
    # While pending: something the humans should see (a status the provider reports that mailgate
    # does not know); approval_status shows it as the send's last_error.
    note: str = ""


class SendState(Frozen):
    """What approval_status shows: the whole life of one send."""

    send_id: str
    mailbox: str
    status: SendStatus
    oversight_mode: OversightMode
    requester: str
    requested_at: datetime
    message_id: str
    original: EmailDraft
    approved: EmailDraft | None = None
    decision: Decision | None = None
    expires_at: datetime | None = None
    scheduled_for: datetime | None = None
    delivered_at: datetime | None = None
    reason: str = ""
    last_error: str = ""
    events: tuple[AuditEvent, ...] = ()
    from_name: str = ""  # the From display name fixed at submission, for approval views


def from_address(mailbox: str, from_name: str, draft: EmailDraft) -> EmailAddress:
    """The exact From a send goes out with: its alias, or the mailbox under its display name."""
    alias = draft.from_alias
    if alias is not None:
        return EmailAddress(address=alias.address, name=alias.name or from_name)
    return EmailAddress(address=mailbox, name=from_name)


class SendSummary(Frozen):
    """One row of a send listing, read from Temporal visibility (no worker needed)."""

    send_id: str
    status: SendStatus
    subject: str
    mailbox: str = ""
    to: tuple[str, ...] = ()
    requested_at: datetime | None = None
    requester: str = ""


class MailboxConfig(Frozen):
    address: str
    display_name: str = ""
    provider: str = "sandbox"
    mode: OversightMode = "gated_send"
    approvers: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    rate_per_hour: int | None = None
    rate_per_day: int | None = None
    approval_window_hours: float = 72.0
    slack_channel: str | None = None
    client_approval: Literal["off", "link"] = "off"

    def policy(self) -> MailboxPolicy:
        return MailboxPolicy(mode=self.mode, allow=self.allow, deny=self.deny, approvers=self.approvers)


class ModeChange(Frozen):
    mode: OversightMode
    actor: str
    role: Role
    reason: str = ""
    proof: str | None = None
