"""What a submission becomes before Temporal sees it: the draft as the mailbox sends it, the send's
ids, its first status, and the request SendEmailWorkflow starts with. No I/O here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from temporalio.common import RawValue
from temporalio.converter import DataConverter

from server.errors import Conflict, InvalidInput
from server.settings import MailboxEntry, Settings
from server.validation import MAX_PAYLOAD_BYTES, AttachmentInput, check_reply_headers, parse_attachments, parse_draft
from workflows import ids
from workflows.mail.addresses import AddressError, parse_address
from workflows.models import GATED_MODES, BodyFormat, EmailAddress, EmailDraft, MailboxConfig, SendRequest, SendStatus
from workflows.policy import recipient_problem
from workflows.providers.multimail.sending import draft_problem as multimail_draft_problem


def mailbox_entry(settings: Settings, address: str) -> MailboxEntry | None:
    """The mailbox's entry in the configuration file, if it has one (signature, aliases)."""
    return next((e for e in settings.mailboxes if e.address.lower() == address.lower()), None)


def compose_draft(
    settings: Settings,
    address: str,
    *,
    to: list[str],
    cc: list[str],
    bcc: list[str],
    subject: str,
    body: str,
    attachments: Sequence[AttachmentInput] | None,
    in_reply_to: str | None,
    references: Sequence[str],
    from_alias: str | None,
    body_format: BodyFormat,
    quote: str,
) -> EmailDraft:
    """The agent's email, checked, with the mailbox's signature and the alias it chose."""
    entry = mailbox_entry(settings, address)
    parent, chain = check_reply_headers(in_reply_to, references)
    return parse_draft(
        to,
        cc,
        bcc,
        subject,
        body,
        attachments=parse_attachments(attachments),
        in_reply_to=parent,
        references=chain,
        from_alias=_alias(address, entry, from_alias),
        signature=entry.signature if entry else "",
        body_format=body_format,
        quote=quote,
    )


def _alias(address: str, entry: MailboxEntry | None, from_alias: str | None) -> EmailAddress | None:
    """The send_as alias the agent chose; None for the mailbox's own address."""
    if from_alias is None or not from_alias.strip():
        return None
    try:
        wanted = parse_address(from_alias).address.lower()
    except AddressError as exc:
        raise InvalidInput(f"from_alias: {exc}") from exc
    if wanted == address.lower():
        return None
    aliases = entry.aliases() if entry else ()
    for alias in aliases:
        if alias.address.lower() == wanted:
            return alias
    known = ", ".join(a.address for a in aliases) or "none are configured (send_as)"
    raise InvalidInput(f"from_alias: {from_alias!r} is not an alias of mailbox {address}; its aliases: {known}")


def check_sendable(settings: Settings, address: str, config: MailboxConfig, draft: EmailDraft) -> None:
    """Refuse now what the provider would refuse after a human approved it, and any send of a
    read_only mailbox."""
    check_provider_limits(settings, address, draft)
    if config.mode == "read_only":
        raise Conflict(
            f"mailbox {address} is read_only: it may not send. Only a human can change its mode "
            "(request_upgrade asks one)."
        )


def check_provider_limits(settings: Settings, address: str, draft: EmailDraft) -> None:
    """Refuse now what the mailbox's provider would refuse after a human approved it."""
    for entry in settings.mailboxes:
        if entry.address.lower() == address.lower() and entry.provider == "multimail":
            problem = multimail_draft_problem(draft.subject, draft.body, len(draft.to))
            if problem:
                raise InvalidInput(f"mailbox {address} sends through MultiMail: {problem}")


def build_request(
    settings: Settings,
    address: str,
    config: MailboxConfig,
    draft: EmailDraft,
    *,
    requester: str,
    idempotency_key: str | None,
    approval_timeout_hours: float | None,
    scheduled: datetime | None,
    approve_at_send_time: bool,
    now: datetime,
) -> tuple[SendRequest, SendStatus, str]:
    """The request, the status the send starts in, and the policy problem that blocks it ("" if none)."""
    # The schedule is part of the email's identity only when there is one, so hashes of
    # unscheduled sends stay what they were.
    timing = {"send_at": scheduled.isoformat(), "approve_at_send_time": approve_at_send_time} if scheduled else None
    content = ids.content_hash(draft, timing)
    send_id = ids.send_id(address, idempotency_key or f"auto:{content}")
    policy = config.policy()
    problem = recipient_problem(policy, draft.recipients())
    gated = config.mode in GATED_MODES
    status: SendStatus
    if problem:
        status = "blocked"
    elif scheduled and (not gated or approve_at_send_time):
        status = "scheduled"
    else:
        status = "pending_approval" if gated else "sending"
    hours = approval_timeout_hours or config.approval_window_hours
    request = SendRequest(
        send_id=send_id,
        mailbox=address,
        from_name=config.display_name,
        requester=requester,
        draft=draft,
        message_id=ids.message_id(send_id, address),
        content_hash=content,
        policy=policy,
        requested_at=now,
        approval_timeout=timedelta(hours=hours),
        send_at=scheduled,
        approve_at_send_time=approve_at_send_time and scheduled is not None,
        notify=anyone_to_notify(settings, config),
        slack_channel=config.slack_channel if settings.slack_bot_token is not None else None,
    )
    return request, status, problem or ""


def anyone_to_notify(settings: Settings, config: MailboxConfig) -> bool:
    if settings.notify_webhook_url:
        return True
    return settings.notify_email and any("@" in p for p in (*config.approvers, *config.reviewers))


def encode_request(converter: DataConverter, request: SendRequest) -> RawValue:
    """The request as Temporal stores it (before a codec seals it), serialised once: its size is
    checked on these bytes, and the start hands them on as they are (a RawValue is not converted
    again). With attachments the request is up to ~1.8 MB, so a second serialisation was not free."""
    [payload] = converter.payload_converter.to_payloads([request])
    size = len(payload.data)
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidInput(
            f"this email is {size} bytes as Temporal stores it, over mailgate's limit of {MAX_PAYLOAD_BYTES} "
            "(Temporal refuses payloads over 2 MB); shorten the body or send fewer attachments"
        )
    return RawValue(payload)
