"""Send operations for every front door, over SendEmailWorkflow in Temporal."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from server.errors import Conflict, Forbidden, InvalidInput, MailgateError, NotFound, Unavailable
from server.mailboxes import Mailboxes, parse_mailbox, rpc_error, update_error
from server.outbound import (
    MAX_PAYLOAD_BYTES,
    AttachmentInput,
    check_reply_headers,
    parse_attachments,
    parse_send_at,
)
from server.settings import MailboxEntry, Settings
from workflows import ids
from workflows.mail.addresses import (
    MAX_BODY_BYTES,
    MAX_RECIPIENTS,
    MAX_SUBJECT_CHARS,
    AddressError,
    check_header_text,
    parse_address,
    parse_addresses,
)
from workflows.models import (
    FINAL_STATUSES,
    GATED_MODES,
    BodyFormat,
    Decision,
    Edits,
    EmailAddress,
    EmailDraft,
    MailboxConfig,
    OversightMode,
    SendRequest,
    SendState,
    SendStatus,
    SendSummary,
)
from workflows.policy import recipient_problem
from workflows.providers.multimail.sending import draft_problem as multimail_draft_problem
from workflows.send import SendEmailWorkflow
from workflows.temporal import MAILBOX, STATUS
from workflows.trust.proofs import sign_decision, sign_request

log = logging.getLogger("mailgate.sends")
T = TypeVar("T")
QUERY_TIMEOUT = timedelta(seconds=10)
_KEY_RE = re.compile(r"[\x21-\x7e]{1,200}")
_SEND_ID_RE = re.compile(r"send-[a-z2-7]{20}")
BODY_FORMATS = ("text", "markdown", "html")


class SendResult(BaseModel):
    """What durable_send and reply_email answer with."""

    send_id: str
    status: SendStatus
    mailbox: str
    oversight_mode: OversightMode
    message_id: str
    expires_at: datetime | None = None
    scheduled_for: datetime | None = None
    reason: str = ""
    deduplicated: bool = False
    next_step: str


class SendPage(BaseModel):
    sends: list[SendSummary]
    next_cursor: str | None = None


def next_step(status: SendStatus, send_id: str) -> str:
    return {
        "pending_approval": (
            f"A human must approve this email before it goes out. Poll approval_status('{send_id}'), "
            "or call wait_for_reply once it is sent; do not send it again."
        ),
        "scheduled": f"It goes out at its send_at time; cancel_send('{send_id}') stops it until then.",
        "sending": f"It is being delivered; approval_status('{send_id}') shows when it is sent.",
        "sent": "Delivered. wait_for_reply waits for an answer in the thread.",
        "blocked": "A mailbox policy stopped it; the reason says which. Change the email, or ask a human.",
        "rejected": "A human rejected it; the reason says why. Do not resend it unchanged.",
        "expired": "Nobody decided within the approval window; send it again if it is still needed.",
        "cancelled": "Cancelled; nothing was sent.",
        "failed": "The mail provider refused it for good; the reason has the provider's words.",
    }[status]


def parse_send_id(send_id: str) -> str:
    send_id = send_id.strip()
    if not _SEND_ID_RE.fullmatch(send_id):
        raise InvalidInput(f"{send_id!r} is not a send id (they look like send-abcdefghij2345abcdef)")
    return send_id


def _draft(to: list[str], cc: list[str], bcc: list[str], subject: str, body: str, **extra: object) -> EmailDraft:
    try:
        draft = EmailDraft(
            to=parse_addresses(to, "to"),
            cc=parse_addresses(cc, "cc"),
            bcc=parse_addresses(bcc, "bcc"),
            subject=check_header_text(subject, "subject", MAX_SUBJECT_CHARS),
            body=body,
            **extra,
        )
    except AddressError as exc:
        raise InvalidInput(str(exc)) from exc
    if not draft.to:
        raise InvalidInput("to: at least one recipient is required")
    if len(draft.recipients()) > MAX_RECIPIENTS:
        raise InvalidInput(f"at most {MAX_RECIPIENTS} recipients in to, cc and bcc together")
    if len(body.encode()) > MAX_BODY_BYTES:
        raise InvalidInput(f"body is {len(body.encode())} bytes; the limit is {MAX_BODY_BYTES}")
    if "\x00" in body:
        raise InvalidInput("body contains a NUL character")
    return draft


def parse_edits(
    subject: str | None = None,
    body: str | None = None,
    to: list[str] | None = None,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
) -> Edits | None:
    """A human's edits, validated as strictly as the agent's original."""
    try:
        edits = Edits(
            subject=check_header_text(subject, "subject", MAX_SUBJECT_CHARS) if subject is not None else None,
            body=body,
            to=parse_addresses(to, "to") if to is not None else None,
            cc=parse_addresses(cc, "cc") if cc is not None else None,
            bcc=parse_addresses(bcc, "bcc") if bcc is not None else None,
        )
    except AddressError as exc:
        raise InvalidInput(str(exc)) from exc
    if edits.to is not None and not edits.to:
        raise InvalidInput("to: an edit may not remove every recipient")
    if body is not None and len(body.encode()) > MAX_BODY_BYTES:
        raise InvalidInput(f"body is {len(body.encode())} bytes; the limit is {MAX_BODY_BYTES}")
    return edits if edits.changes() else None


def check_person(name: str, field: str = "approver") -> str:
    name = name.strip()
    if not name:
        raise InvalidInput(f"{field}: a name is required")
    try:
        return check_header_text(name, field, 200)
    except AddressError as exc:
        raise InvalidInput(str(exc)) from exc


class Sends:
    def __init__(self, client: Client, settings: Settings, mailboxes: Mailboxes, proof_key: bytes) -> None:
        self._client = client
        self._settings = settings
        self._mailboxes = mailboxes
        # Signs what this front door hands to Temporal (workflows/trust/proofs.py); never sent anywhere.
        self._proof_key = proof_key

    @property
    def client(self) -> Client:
        return self._client

    def _entry(self, address: str) -> MailboxEntry | None:
        """The mailbox's entry in the configuration file, if it has one (signature, aliases)."""
        return next((e for e in self._settings.mailboxes if e.address.lower() == address.lower()), None)

    @staticmethod
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

    def scope(self, workflow_type: str) -> str:
        """Visibility filter for this deployment's workflows: its task queue may share a namespace."""
        return f"WorkflowType = '{workflow_type}' AND TaskQueue = '{self._settings.task_queue}'"

    def _handle(self, send_id: str) -> WorkflowHandle[SendEmailWorkflow, SendState]:
        return self._client.get_workflow_handle_for(SendEmailWorkflow.run, parse_send_id(send_id))

    @staticmethod
    def _missing(send_id: str) -> NotFound:
        return NotFound(
            f"no send with id {send_id}",
            next_steps={
                "mcp": "list_sends shows the sends of a mailbox",
                "cli": "`mailgate approvals list --status all` lists the sends",
                "api": "GET /api/approvals?status=all lists the sends",
            },
        )

    async def submit(
        self,
        *,
        mailbox: str,
        to: list[str],
        subject: str,
        body: str,
        cc: list[str] | None = None,
        bcc: list[str] | None = None,
        idempotency_key: str | None = None,
        approval_timeout_hours: float | None = None,
        requester: str = "agent",
        attachments: Sequence[AttachmentInput] | None = None,
        send_at: str | datetime | None = None,
        approve_at_send_time: bool = False,
        in_reply_to: str | None = None,
        references: Sequence[str] = (),
        body_format: BodyFormat = "text",
        from_alias: str | None = None,
        quote: str = "",
    ) -> SendResult:
        """Start a send (or find the same one again). Replies pass the parent's ids as headers."""
        address = parse_mailbox(mailbox)
        if body_format not in BODY_FORMATS:
            raise InvalidInput(f"body_format: one of {', '.join(BODY_FORMATS)}, not {body_format!r}")
        entry = self._entry(address)
        if idempotency_key is not None and not _KEY_RE.fullmatch(idempotency_key):
            raise InvalidInput("idempotency_key: 1 to 200 printable ASCII characters without spaces")
        if approval_timeout_hours is not None and not 0 < approval_timeout_hours <= 24 * 365:
            raise InvalidInput("approval_timeout_hours: a positive number of hours, at most 8760")
        now = datetime.now(UTC)
        scheduled = parse_send_at(send_at, now)
        parent, chain = check_reply_headers(in_reply_to, references)
        draft = _draft(
            to,
            cc or [],
            bcc or [],
            subject,
            body,
            attachments=parse_attachments(attachments),
            in_reply_to=parent,
            references=chain,
            from_alias=self._alias(address, entry, from_alias),
            signature=entry.signature if entry else "",
            body_format=body_format,
            quote=quote,
        )
        config = await self._mailboxes.config(address)
        self._check_provider_limits(address, draft)
        if config.mode == "read_only":
            raise Conflict(
                f"mailbox {address} is read_only: it may not send. Only a human can change its mode "
                "(request_upgrade asks one)."
            )
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
            notify=self._anyone_to_notify(config),
            slack_channel=config.slack_channel if self._settings.slack_bot_token is not None else None,
        )
        if status == "pending_approval":
            await self._check_pending_cap(address, send_id)
        request = sign_request(self._proof_key, request, now)
        size = len(request.model_dump_json())
        if size > MAX_PAYLOAD_BYTES:
            raise InvalidInput(
                f"this email is {size} bytes as Temporal stores it, over mailgate's limit of {MAX_PAYLOAD_BYTES} "
                "(Temporal refuses payloads over 2 MB); shorten the body or send fewer attachments"
            )
        try:
            await self._client.start_workflow(
                SendEmailWorkflow.run,
                request,
                id=send_id,
                task_queue=self._settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(STATUS, status),
                        SearchAttributePair(MAILBOX, ids.mailbox_key(address)),
                    ]
                ),
                memo={
                    "content_hash": content,
                    "mailbox": address,
                    "subject": draft.subject,
                    "to": [a.address for a in draft.to],
                    "requester": requester,
                },
            )
        except WorkflowAlreadyStartedError:
            return await self._existing(send_id, content, idempotency_key)
        except RPCError as err:
            raise rpc_error(err, self._missing(send_id)) from err
        log.info("send %s submitted to %s: %s", send_id, address, status, extra={"send_id": send_id})
        return SendResult(
            send_id=send_id,
            status=status,
            mailbox=address,
            oversight_mode=config.mode,
            message_id=request.message_id,
            expires_at=now + request.approval_timeout if status == "pending_approval" else None,
            scheduled_for=scheduled,
            reason=problem or "",
            next_step=next_step(status, send_id),
        )

    async def _check_pending_cap(self, address: str, send_id: str) -> None:
        """At most max_pending_per_mailbox sends wait per mailbox: an agent cannot bury its humans.

        Counted from visibility, which can lag a burst by a moment; a retry of a send that
        already exists is never refused here.
        """
        cap = self._settings.max_pending_per_mailbox
        query = (
            f"{self.scope('SendEmailWorkflow')} AND {MAILBOX.name} = '{ids.mailbox_key(address)}' "
            f"AND {STATUS.name} = 'pending_approval' AND ExecutionStatus = 'Running'"
        )
        try:
            waiting = (await self._client.count_workflows(query)).count
        except RPCError as err:
            raise rpc_error(err, "no sends") from err
        if waiting < cap:
            return
        try:
            await self._handle(send_id).describe()
            return  # the same send again: _existing answers for it
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise rpc_error(err, self._missing(send_id)) from err
        raise Conflict(
            f"mailbox {address} already has {waiting} emails waiting for a human's approval, the most it may have "
            f"(MAILGATE_MAX_PENDING_PER_MAILBOX={cap}); nothing was sent or queued. Next step: wait until a human "
            "decides some (list_sends with status 'pending_approval' shows them; approval_status tells you when), "
            "or cancel_send those no longer needed, then send this again."
        )

    def _anyone_to_notify(self, config: MailboxConfig) -> bool:
        if self._settings.notify_webhook_url:
            return True
        return self._settings.notify_email and any("@" in p for p in (*config.approvers, *config.reviewers))

    async def _existing(self, send_id: str, content: str, key: str | None) -> SendResult:
        """A retried submission: the same send if the content matches, an error if it does not."""
        description = await self._handle(send_id).describe()
        memo = await description.memo()
        if memo.get("content_hash") != content:
            raise Conflict(
                f"idempotency_key {key!r} was already used for a different email ({send_id}); "
                "use a new key for a new email"
            )
        state = await self.status(send_id)
        return SendResult(
            send_id=send_id,
            status=state.status,
            mailbox=state.mailbox,
            oversight_mode=state.oversight_mode,
            message_id=state.message_id,
            expires_at=state.expires_at,
            scheduled_for=state.scheduled_for,
            reason=state.reason,
            deduplicated=True,
            next_step=next_step(state.status, send_id),
        )

    async def status(self, send_id: str) -> SendState:
        handle = self._handle(send_id)
        try:
            state = await handle.query(SendEmailWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise self._missing(send_id) from err
            raise await self._no_worker(send_id) from err
        held = state.status == "pending_approval" and bool(state.events) and state.events[-1].kind == "held_by_provider"
        if state.status != "sending" and not held:
            return state
        # While the provider is failing, the activity retries; its last error is on the server.
        try:
            description = await handle.describe()
        except RPCError as err:
            raise rpc_error(err, self._missing(send_id)) from err
        for pending in description.raw_description.pending_activities:
            if held and pending.heartbeat_details.payloads:
                # The watch of a held send heartbeats what people should see while it waits.
                [note, *_] = await self._client.data_converter.decode(pending.heartbeat_details.payloads)
                if isinstance(note, str) and note:
                    return state.model_copy(update={"last_error": note})
            elif pending.last_failure.message:
                # With encryption on, the failure's message is sealed in its attributes: open it.
                failure = await self._client.data_converter.decode_failure(pending.last_failure)
                message = failure.message if isinstance(failure, FailureError) else str(failure)
                error = f"{message} (attempt {pending.attempt}, retrying)"
                return state.model_copy(update={"last_error": error})
        return state

    async def _no_worker(self, send_id: str) -> MailgateError:
        """Queries need a worker; visibility does not. Say what is known and what is missing."""
        try:
            status = (await self._handle(send_id).describe()).typed_search_attributes.get(STATUS)
        except RPCError as err:
            return rpc_error(err, self._missing(send_id))
        return Unavailable(
            f"{send_id} is {status} (per Temporal's index); its details need a running mailgate worker "
            "and none answered in time. Try again shortly."
        )

    async def cancel(self, send_id: str, actor: str = "agent") -> SendState:
        return await self._update(send_id, SendEmailWorkflow.cancel, actor, "it can no longer be cancelled")

    def _check_provider_limits(self, address: str, draft: EmailDraft) -> None:
        """Refuse now what the mailbox's provider would refuse after a human approved it."""
        for entry in self._settings.mailboxes:
            if entry.address.lower() == address.lower() and entry.provider == "multimail":
                problem = multimail_draft_problem(draft.subject, draft.body, len(draft.to))
                if problem:
                    raise InvalidInput(f"mailbox {address} sends through MultiMail: {problem}")

    async def decide(self, send_id: str, decision: Decision) -> SendState:
        """A human's decision, answered by the workflow (needs a running worker)."""
        check_person(decision.approver)
        if decision.decision == "approve" and decision.edits is not None:
            state = await self.status(send_id)
            self._check_provider_limits(state.mailbox, decision.edits.apply(state.original))
        signed = sign_decision(self._proof_key, parse_send_id(send_id), decision, datetime.now(UTC))
        return await self._update(send_id, SendEmailWorkflow.decide, signed, "there is nothing to decide")

    async def _update(
        self,
        send_id: str,
        update: UpdateMethodMultiParam[[SendEmailWorkflow, T], SendState],
        arg: T,
        too_late: str,
    ) -> SendState:
        try:
            return await self._handle(send_id).execute_update(update, arg)
        except WorkflowUpdateFailedError as err:
            raise update_error(err) from err
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise rpc_error(err, self._missing(send_id)) from err
        # Updates cannot reach a closed workflow; say why from its final state.
        state = await self.status(send_id)
        reason = f"send {state.send_id} is {state.status}; {too_late}"
        if state.decision is not None:
            done = state.decision
            verb = "approved" if done.decision == "approve" else "rejected"
            when = done.decided_at.isoformat(timespec="seconds") if done.decided_at else ""
            reason += f" (it was {verb} by {done.approver} at {when})"
        raise Conflict(reason)

    async def signal_decision(self, send_id: str, decision: Decision) -> Literal["accepted", "duplicate"]:
        """A decision that is stored now and takes effect when a worker runs (webhooks, links).

        Needs no worker: the send's status comes from visibility and earlier deliveries of the
        same ``decision_id`` from its history, so a retried webhook or a reused link is told
        apart from a new decision even while every worker is down. Concurrent duplicates that
        race past this check are dropped by the workflow, which also remembers decision ids.
        """
        check_person(decision.approver)
        handle = self._handle(send_id)
        try:
            description = await handle.describe()
            if decision.decision_id is not None and await self._signalled(handle, decision.decision_id):
                return "duplicate"
            status = description.typed_search_attributes.get(STATUS)
            if status != "pending_approval":
                raise Conflict(f"send {send_id} is {status}; there is nothing to decide")
            # The workflow refuses a non-approver too, but silently; say so to the sender now.
            mailbox = (await description.memo()).get("mailbox", "")
            approvers = [a.lower() for a in (await self._mailboxes.config(mailbox)).approvers] if mailbox else []
            if approvers and decision.approver.strip().lower() not in approvers:
                raise Forbidden(f"{decision.approver} is not an approver of {mailbox}")
            signed = sign_decision(self._proof_key, handle.id, decision, datetime.now(UTC))
            await handle.signal(SendEmailWorkflow.decide_signal, signed)
        except RPCError as err:
            raise rpc_error(err, self._missing(send_id)) from err
        return "accepted"

    async def _signalled(self, handle: WorkflowHandle[SendEmailWorkflow, SendState], decision_id: str) -> bool:
        """Whether the send's history already holds a decide_signal with this decision id."""
        converter = self._client.data_converter
        async for event in handle.fetch_history_events():
            if not event.HasField("workflow_execution_signaled_event_attributes"):
                continue
            signalled = event.workflow_execution_signaled_event_attributes
            if signalled.signal_name != "decide_signal":
                continue
            try:
                [earlier] = await converter.decode(signalled.input.payloads, [Decision])
            except (ValueError, TypeError):
                continue
            if isinstance(earlier, Decision) and earlier.decision_id == decision_id:
                return True
        return False

    async def search(
        self,
        *,
        mailbox: str | None = None,
        status: SendStatus | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SendPage:
        clauses = [self.scope("SendEmailWorkflow")]
        if mailbox:
            clauses.append(f"{MAILBOX.name} = '{ids.mailbox_key(parse_mailbox(mailbox))}'")
        if status:
            clauses.append(f"{STATUS.name} = '{status}'")
            if status not in FINAL_STATUSES:
                # An indexed column narrows the scan before the search attribute is compared.
                clauses.append("ExecutionStatus = 'Running'")
        query = " AND ".join(clauses)
        bad_cursor = InvalidInput(
            "cursor: not a cursor from a previous page",
            next_steps={
                "mcp": "pass the next_cursor that list_sends returned",
                "api": "pass the next_cursor that GET /api/approvals returned",
            },
        )
        try:
            token = bytes.fromhex(cursor) if cursor else None
        except ValueError as exc:
            raise bad_cursor from exc
        iterator = self._client.list_workflows(query, page_size=limit, next_page_token=token)
        try:
            await iterator.fetch_next_page()
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT and token:
                raise bad_cursor from err
            raise rpc_error(err, "no sends") from err
        sends = []
        for execution in iterator.current_page or []:
            memo = await execution.memo()
            sends.append(
                SendSummary(
                    send_id=execution.id,
                    mailbox=memo.get("mailbox", ""),
                    status=execution.typed_search_attributes.get(STATUS) or "pending_approval",
                    subject=memo.get("subject", ""),
                    to=tuple(memo.get("to", [])),
                    requested_at=execution.start_time,
                    requester=memo.get("requester", ""),
                )
            )
        next_token = iterator.next_page_token
        return SendPage(sends=sends, next_cursor=next_token.hex() if next_token else None)
