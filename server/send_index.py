"""Sends as Temporal's visibility index lists them: searches and counts that need no worker.

The index can lag a burst of starts by a moment; nothing here decides what a send may do.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from server.errors import InvalidInput, rpc_error
from server.settings import Settings
from server.validation import parse_mailbox
from server.views import SendPage
from workflows.ids import mailbox_key
from workflows.models import FINAL_STATUSES, SendStatus, SendSummary
from workflows.temporal import MAILBOX, STATUS


class SendIndex:
    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    def scope(self, workflow_type: str) -> str:
        """Visibility filter for this deployment's workflows: its task queue may share a namespace."""
        return f"WorkflowType = '{workflow_type}' AND TaskQueue = '{self._settings.task_queue}'"

    async def waiting(self, address: str) -> int:
        """How many sends of the mailbox wait for a human's approval."""
        query = (
            f"{self.scope('SendEmailWorkflow')} AND {MAILBOX.name} = '{mailbox_key(address)}' "
            f"AND {STATUS.name} = 'pending_approval' AND ExecutionStatus = 'Running'"
        )
        try:
            return (await self._client.count_workflows(query)).count
        except RPCError as err:
            raise rpc_error(err, "no sends") from err

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
            clauses.append(f"{MAILBOX.name} = '{mailbox_key(parse_mailbox(mailbox))}'")
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
