"""Bulk trash requests for every front door: the agent's side asks, the humans' side decides.

A request is a BulkTrashWorkflow (workflows/trash_approval.py) whose id (``trash-...``) comes
from the mailbox and the ids, so an agent asking again for the same emails finds the same
request and learns how it stands. Humans decide with the same commands as sends (`mailgate
approvals approve|reject`, `POST /api/approvals/{id}/approve|reject`, the dashboard: ``decide``,
an update) and the same channels (notice links, Slack, the Standard Webhooks door:
``signal_decision``, a signal); the approvers are told like for a send (docs/approvals.md).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from server.errors import InvalidInput, MailgateError, NotFound, rpc_error, update_error
from server.inbox import Inbox
from server.mailboxes import Mailboxes
from server.send_requests import anyone_to_notify
from server.sends import ended, signal_once
from server.settings import Settings
from server.validation import check_person
from server.views import EmailView
from workflows import ids
from workflows.models import Decision, MailboxConfig
from workflows.temporal import MAILBOX, STATUS
from workflows.trash_approval import (
    TRASH_PREFIX,
    BulkTrashWorkflow,
    TrashRequest,
    TrashState,
    TrashStatus,
    summary_memo,
)
from workflows.trust.notice_proofs import trash_notice_fields
from workflows.trust.proofs import fields_of, sign, sign_decision

_ID_RE = re.compile(r"trash-[a-z2-7]{20}")
QUERY_TIMEOUT = timedelta(seconds=10)
# A request that ended without trashing (expired, or refused for a proof) may be asked again.
_ASK_AGAIN = ("expired", "blocked")


def is_trash_id(value: str) -> bool:
    return value.strip().startswith(TRASH_PREFIX)


def parse_trash_id(value: str) -> str:
    value = value.strip()
    if not _ID_RE.fullmatch(value):
        raise InvalidInput(f"{value!r} is not a trash request id (they look like trash-abcdefghij2345abcdef)")
    return value


def trash_id(mailbox: str, email_ids: list[str]) -> str:
    """The same emails of the same mailbox, in any order, make the same request."""
    raw = hashlib.sha256("\x00".join([mailbox.lower(), *sorted(email_ids)]).encode()).digest()
    return TRASH_PREFIX + base64.b32encode(raw).decode("ascii").lower()[:20]


class TrashSummary(BaseModel):
    kind: Literal["trash"] = "trash"  # beside sends in approval listings: says what this row is
    request_id: str
    mailbox: str
    status: str
    count: int
    requester: str
    requested_at: datetime | None = None


class TrashEmail(BaseModel):
    """One email of a trash request as the human deciding sees it (found: still in the mailbox)."""

    email_id: str
    found: bool
    sender: str = ""
    subject: str = ""
    folder: str = ""


class TrashDetails(TrashState):
    """A trash request and each of its emails: what `mailgate approvals show trash-...` prints."""

    kind: Literal["trash"] = "trash"
    emails: tuple[TrashEmail, ...] = ()


async def trash_emails(inbox: Inbox, state: TrashState) -> list[tuple[str, EmailView | None]]:
    """Each email of the request, read without marking it read; None when it is gone."""

    async def one(email_id: str) -> EmailView | None:
        try:
            return await inbox.read(state.mailbox, email_id, mark_read=False)
        except MailgateError:
            return None

    return list(zip(state.email_ids, await asyncio.gather(*(one(i) for i in state.email_ids)), strict=True))


async def trash_details(inbox: Inbox, state: TrashState) -> TrashDetails:
    emails = [
        TrashEmail(email_id=i, found=False)
        if e is None
        else TrashEmail(email_id=i, found=True, sender=e.sender, subject=e.subject, folder=e.folder)
        for i, e in await trash_emails(inbox, state)
    ]
    return TrashDetails.model_validate({**state.model_dump(), "emails": emails})


class TrashApprovals:
    def __init__(self, client: Client, settings: Settings, mailboxes: Mailboxes, proof_key: bytes) -> None:
        self._client = client
        self._settings = settings
        self._mailboxes = mailboxes
        self._proof_key = proof_key  # signs requests and decisions; never sent anywhere

    def _handle(self, request_id: str) -> WorkflowHandle[BulkTrashWorkflow, TrashState]:
        return self._client.get_workflow_handle_for(BulkTrashWorkflow.run, parse_trash_id(request_id))

    @staticmethod
    def _missing(request_id: str) -> NotFound:
        return NotFound(
            f"no trash request with id {request_id}",
            next_steps={
                "cli": "`mailgate approvals list` lists what waits for a decision",
                "api": "GET /api/approvals lists what waits for a decision (trash_requests)",
            },
        )

    async def request(
        self, address: str, email_ids: list[str], config: MailboxConfig, requester: str = "agent"
    ) -> TrashState:
        """Ask a human to approve trashing these emails, or find the same request again."""
        request_id = trash_id(address, email_ids)
        try:
            description = await self._handle(request_id).describe()
            if description.status == WorkflowExecutionStatus.RUNNING:
                return await self.status(request_id)
            if description.typed_search_attributes.get(STATUS) not in _ASK_AGAIN:
                return await self.status(request_id)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise rpc_error(err, self._missing(request_id)) from err
        now = datetime.now(UTC)
        notice_fields = trash_notice_fields(address, requester, len(email_ids))
        request = TrashRequest(
            request_id=request_id,
            mailbox=address,
            email_ids=tuple(email_ids),
            requester=requester,
            mode=config.mode,
            approvers=config.approvers,
            requested_at=now,
            approval_timeout=timedelta(hours=config.approval_window_hours),
            notify=anyone_to_notify(self._settings, config),
            slack_channel=config.slack_channel if self._settings.slack_bot_token is not None else None,
            notice_proof=sign(self._proof_key, "notice", request_id, notice_fields, now),
        )
        request = request.model_copy(
            update={"proof": sign(self._proof_key, "request", request_id, fields_of(request), now)}
        )
        try:
            await self._client.start_workflow(
                BulkTrashWorkflow.run,
                request,
                id=request_id,
                task_queue=self._settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(STATUS, "pending_approval"),
                        SearchAttributePair(MAILBOX, ids.mailbox_key(address)),
                    ]
                ),
                memo=summary_memo(request),
            )
        except RPCError as err:
            raise rpc_error(err, self._missing(request_id)) from err
        # Said from the request itself: the answer needs no worker to be running yet.
        return TrashState(
            request_id=request_id,
            mailbox=address,
            email_ids=request.email_ids,
            status="pending_approval",
            requester=requester,
            requested_at=now,
            expires_at=now + request.approval_timeout,
        )

    async def status(self, request_id: str) -> TrashState:
        try:
            return await self._handle(request_id).query(BulkTrashWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as err:
            raise rpc_error(err, self._missing(request_id)) from err

    async def decide(self, request_id: str, decision: Decision) -> TrashState:
        """A human's decision, signed here as coming through a front door (needs a running worker)."""
        check_person(decision.approver)
        if decision.edits is not None:
            raise InvalidInput("a trash request takes no edits; approve or reject it as it is")
        signed = sign_decision(self._proof_key, parse_trash_id(request_id), decision, datetime.now(UTC))
        try:
            return await self._handle(request_id).execute_update(BulkTrashWorkflow.decide, signed)
        except WorkflowUpdateFailedError as err:
            raise update_error(err) from err
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise rpc_error(err, self._missing(request_id)) from err
        state = await self.status(request_id)  # closed: say how it ended
        raise ended(f"trash request {state.request_id}", state.status, "there is nothing to decide", state.decision)

    async def signal_decision(self, request_id: str, decision: Decision) -> Literal["accepted", "duplicate"]:
        """A decision stored now that takes effect when a worker runs (links, Slack, webhooks)."""

        def sign(workflow_id: str, decision: Decision) -> Decision:
            return sign_decision(self._proof_key, workflow_id, decision, datetime.now(UTC))

        handle = self._handle(request_id)
        try:
            return await signal_once(
                self._client, handle, f"trash request {request_id}", decision, self._mailboxes, sign
            )
        except RPCError as err:
            raise rpc_error(err, self._missing(request_id)) from err

    async def pending(
        self, mailbox: str | None = None, status: TrashStatus | None = "pending_approval"
    ) -> list[TrashSummary]:
        clauses = [f"WorkflowType = 'BulkTrashWorkflow' AND TaskQueue = '{self._settings.task_queue}'"]
        if mailbox:
            clauses.append(f"{MAILBOX.name} = '{ids.mailbox_key(mailbox)}'")
        if status:
            clauses.append(f"{STATUS.name} = '{status}'")
        found: list[TrashSummary] = []
        try:
            async for execution in self._client.list_workflows(" AND ".join(clauses), limit=500):
                memo = await execution.memo()
                found.append(
                    TrashSummary(
                        request_id=execution.id,
                        mailbox=memo.get("mailbox", ""),
                        status=execution.typed_search_attributes.get(STATUS) or "pending_approval",
                        count=int(memo.get("count", 0)),
                        requester=memo.get("requester", ""),
                        requested_at=execution.start_time,
                    )
                )
        except RPCError as err:
            raise rpc_error(err, "no trash requests") from err
        return sorted(found, key=lambda s: (s.requested_at is None, s.requested_at, s.request_id))
