"""Send operations for every front door, over SendEmailWorkflow in Temporal.

What a submission becomes before it starts is server/send_requests.py; listings come from
Temporal's index (server/send_index.py); the answers are server/views.py.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.converter import DataConverter
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from server.errors import (
    Conflict,
    Forbidden,
    MailgateError,
    NotFound,
    Unavailable,
    rpc_error,
    update_error,
)
from server.mailboxes import Mailboxes
from server.pending_cap import PendingTally
from server.send_index import SendIndex
from server.send_requests import (
    build_request,
    check_provider_limits,
    check_sendable,
    compose_draft,
    encode_request,
)
from server.settings import Settings
from server.validation import (
    AttachmentInput,
    check_person,
    check_send_options,
    parse_mailbox,
    parse_send_at,
    parse_send_id,
)
from server.views import SendResult, next_step
from workflows import ids
from workflows.models import BodyFormat, Decision, SendState
from workflows.send import SendEmailWorkflow
from workflows.temporal import MAILBOX, STATUS
from workflows.trust.proofs import sign_decision, sign_request
from workflows.trust.signatures import decision_signing_key, public_key_hex, sign_decision_key

log = logging.getLogger("mailgate.sends")
T = TypeVar("T")
QUERY_TIMEOUT = timedelta(seconds=10)
# Sends whose mailbox and requester this front door knows without asking Temporal (~100 bytes each).
PARTIES_KEPT = 4096
SEND_WORKFLOW = SendEmailWorkflow.__name__  # its workflow type: @workflow.defn names none of its own


class Sends:
    def __init__(self, client: Client, settings: Settings, mailboxes: Mailboxes, proof_key: bytes) -> None:
        self._client = client
        self._settings = settings
        self._mailboxes = mailboxes
        # Signs what this front door hands to Temporal (workflows/trust/proofs.py); never sent anywhere.
        self._proof_key = proof_key
        self.index = SendIndex(client, settings)
        # Listing sends needs Temporal's index only, no worker: see server/send_index.py.
        self.search = self.index.search
        self._pending = PendingTally()
        # (mailbox, requester) of sends started here or looked up: both are fixed when a send starts.
        self._parties: OrderedDict[str, tuple[str, str]] = OrderedDict()
        # Signs decisions so the send workflow can check them itself (workflows/trust/signatures.py).
        self._signing_key = decision_signing_key(proof_key)
        self._decision_key = public_key_hex(self._signing_key)

    @property
    def client(self) -> Client:
        return self._client

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
        check_send_options(body_format, idempotency_key, approval_timeout_hours)
        now = datetime.now(UTC)
        scheduled = parse_send_at(send_at, now)
        draft = compose_draft(
            self._settings,
            address,
            to=to,
            cc=cc or [],
            bcc=bcc or [],
            subject=subject,
            body=body,
            attachments=attachments,
            in_reply_to=in_reply_to,
            references=references,
            from_alias=from_alias,
            body_format=body_format,
            quote=quote,
        )
        config = await self._mailboxes.config(address)
        check_sendable(self._settings, address, config, draft)
        request, status, problem = build_request(
            self._settings,
            address,
            config,
            draft,
            requester=requester,
            idempotency_key=idempotency_key,
            approval_timeout_hours=approval_timeout_hours,
            scheduled=scheduled,
            approve_at_send_time=approve_at_send_time,
            now=now,
        )
        # The key that checks decisions' signatures in the workflow (workflows/trust/signatures.py).
        request = request.model_copy(update={"decision_key": self._decision_key})
        send_id, content = request.send_id, request.content_hash
        if status == "pending_approval":
            await self._check_pending_cap(address, send_id)
        request = sign_request(self._proof_key, request, now)
        payload = encode_request(self._client.data_converter, request)
        try:
            await self._client.start_workflow(
                SEND_WORKFLOW,
                payload,  # the SendRequest, serialised once (its size checked on these bytes)
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
        self._remember(send_id, address, requester)
        log.info("send %s submitted to %s: %s", send_id, address, status, extra={"send_id": send_id})
        return SendResult(
            send_id=send_id,
            status=status,
            mailbox=address,
            oversight_mode=config.mode,
            message_id=request.message_id,
            expires_at=now + request.approval_timeout if status == "pending_approval" else None,
            scheduled_for=scheduled,
            reason=problem,
            next_step=next_step(status, send_id),
        )

    async def _check_pending_cap(self, address: str, send_id: str) -> None:
        """At most max_pending_per_mailbox sends wait per mailbox: an agent cannot bury its humans.

        Counted from visibility, which can lag a burst by a moment (so far below the cap, not for
        every send: server/pending_cap.py); a retry of a send that already exists is never refused here.
        """
        cap = self._settings.max_pending_per_mailbox
        if self._pending.clearly_under(address.lower(), cap):
            return
        waiting = await self.index.waiting(address)
        if waiting < cap:
            self._pending.counted(address.lower(), waiting)
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

    async def parties(self, send_id: str) -> tuple[str, str]:
        """(mailbox, requester) as the send's start recorded them: needs no worker, so an approval
        waits for the worker once (its update), not first for a query queued behind the worker's
        backlog, whose deadline ran out under load (issue 20). The workflow checks both itself.

        A send started by this front door, or looked up before, needs no call at all: an approval by
        a person's token then costs the update alone (issue 20)."""
        send_id = parse_send_id(send_id)
        known = self._parties.get(send_id)
        if known is not None:
            self._parties.move_to_end(send_id)
            return known
        try:
            memo = await (await self._handle(send_id).describe()).memo()
        except RPCError as err:
            raise rpc_error(err, self._missing(send_id)) from err
        mailbox, requester = memo.get("mailbox"), memo.get("requester")
        if isinstance(mailbox, str) and isinstance(requester, str):
            return self._remember(send_id, mailbox, requester)
        state = await self.status(send_id)  # started before its memo named both
        return self._remember(send_id, state.mailbox, state.requester)

    def _remember(self, send_id: str, mailbox: str, requester: str) -> tuple[str, str]:
        self._parties[send_id] = (mailbox, requester)
        self._parties.move_to_end(send_id)
        if len(self._parties) > PARTIES_KEPT:
            self._parties.popitem(last=False)
        return mailbox, requester

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

    async def decide(self, send_id: str, decision: Decision) -> SendState:
        """A human's decision, answered by the workflow (needs a running worker)."""
        check_person(decision.approver)
        if decision.decision == "approve" and decision.edits is not None:
            state = await self.status(send_id)
            check_provider_limits(self._settings, state.mailbox, decision.edits.apply(state.original))
        signed = self._sign(parse_send_id(send_id), decision)
        return await self._update(send_id, SendEmailWorkflow.decide, signed, "there is nothing to decide")

    def _sign(self, send_id: str, decision: Decision) -> Decision:
        signed = sign_decision(self._proof_key, send_id, decision, datetime.now(UTC))
        return sign_decision_key(self._signing_key, send_id, signed)

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
        raise ended(f"send {state.send_id}", state.status, too_late, state.decision)

    async def signal_decision(self, send_id: str, decision: Decision) -> Literal["accepted", "duplicate"]:
        """A decision that is stored now and takes effect when a worker runs (webhooks, links).

        Needs no worker: the send's status comes from visibility and earlier deliveries of the
        same ``decision_id`` from its history, so a retried webhook or a reused link is told
        apart from a new decision even while every worker is down. Concurrent duplicates that
        race past this check are dropped by the workflow, which also remembers decision ids.
        """
        handle = self._handle(send_id)
        try:
            return await signal_once(self._client, handle, f"send {send_id}", decision, self._mailboxes, self._sign)
        except RPCError as err:
            raise rpc_error(err, self._missing(send_id)) from err


def ended(what: str, status: str, too_late: str, decision: Decision | None) -> Conflict:
    """Why a closed send or trash request takes no update: its final status, and who decided it."""
    reason = f"{what} is {status}; {too_late}"
    if decision is not None:
        verb = "approved" if decision.decision == "approve" else "rejected"
        when = f" at {decision.decided_at.isoformat(timespec='seconds')}" if decision.decided_at else ""
        reason += f" (it was {verb} by {decision.approver}{when})"
    return Conflict(reason)


async def signal_once(
    client: Client,
    handle: WorkflowHandle[Any, Any],
    what: str,
    decision: Decision,
    mailboxes: Mailboxes,
    sign: Callable[[str, Decision], Decision],
) -> Literal["accepted", "duplicate"]:
    """Send a decision as the ``decide_signal`` of a send or trash request, once per decision id.

    Needs no worker: the status comes from visibility and earlier deliveries of the same
    ``decision_id`` from the history, so a retried webhook or a reused link is told apart from a
    new decision even while every worker is down. Concurrent duplicates that race past this check
    are dropped by the workflow, which also remembers decision ids. RPCError is the caller's.
    """
    check_person(decision.approver)
    description = await handle.describe()
    if decision.decision_id is not None and await signalled(client.data_converter, handle, decision.decision_id):
        return "duplicate"
    status = description.typed_search_attributes.get(STATUS)
    if status != "pending_approval":
        raise Conflict(f"{what} is {status}; there is nothing to decide")
    # The workflow refuses a non-approver too, but silently; say so to the sender now.
    mailbox = str((await description.memo()).get("mailbox", ""))
    approvers = [a.lower() for a in (await mailboxes.config(mailbox)).approvers] if mailbox else []
    if approvers and decision.approver.strip().lower() not in approvers:
        raise Forbidden(f"{decision.approver} is not an approver of {mailbox}")
    await handle.signal("decide_signal", sign(handle.id, decision))
    return "accepted"


async def signalled(converter: DataConverter, handle: WorkflowHandle[Any, Any], decision_id: str) -> bool:
    """Whether a workflow's history already holds a decide_signal with this decision id."""
    async for event in handle.fetch_history_events():
        if not event.HasField("workflow_execution_signaled_event_attributes"):
            continue
        signal = event.workflow_execution_signaled_event_attributes
        if signal.signal_name != "decide_signal":
            continue
        try:
            [earlier] = await converter.decode(signal.input.payloads, [Decision])
        except (ValueError, TypeError):
            continue
        if isinstance(earlier, Decision) and earlier.decision_id == decision_id:
            return True
    return False
