"""Activities of the inbound workflows. Each is safe to repeat: scans only read, reply
signals are ignored by a wait that already has its reply, and intake workflows are started
under an id derived from the mailbox and Message-ID, so a repeat finds them started.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from workflows.ids import intake_workflow_id, watcher_workflow_id
from workflows.inbound import signal_watcher
from workflows.inbox import DispatchRequest, ScanRequest, ScanResult, Watch
from workflows.providers.base import ProviderSet

SCAN_BATCH = 100


class InboxActivities:
    def __init__(self, client: Client, providers: ProviderSet) -> None:
        self._client = client
        self._providers = providers

    @activity.defn
    async def scan(self, request: ScanRequest) -> ScanResult:
        """What became visible since the cursor, and the first reply for each registered wait."""
        provider = self._providers.for_mailbox(request.mailbox)
        changes = await provider.changes(request.mailbox, request.cursor, SCAN_BATCH)
        inbound = tuple(e for e in changes.emails if e.folder == "inbox")
        replies = []
        if inbound or request.check_watches:
            for watch in request.watches:
                reply = await provider.find_reply(request.mailbox, watch.message_id)
                if reply is not None:
                    replies.append((watch.wait_id, reply))
        return ScanResult(cursor=changes.cursor, inbound=inbound, replies=tuple(replies), more=changes.more)

    @activity.defn
    async def dispatch(self, request: DispatchRequest) -> None:
        for wait_id, reply in request.replies:
            try:
                await self._client.get_workflow_handle(wait_id).signal("reply_found", reply)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise  # the wait may have timed out meanwhile; then nobody needs the signal
        intake = request.intake
        if intake is None:
            return
        queue = intake.task_queue or activity.info().task_queue
        for email in request.inbound:
            try:
                await self._client.start_workflow(
                    intake.workflow,
                    email,
                    id=intake_workflow_id(request.mailbox, email.message_id),
                    task_queue=queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    static_summary=f"intake of {email.message_id} in {request.mailbox}",
                )
            except WorkflowAlreadyStartedError:
                continue

    @activity.defn
    async def watch(self, mailbox: str, watch: Watch) -> None:
        await signal_watcher(self._client, mailbox, activity.info().task_queue, "watch", [watch])

    @activity.defn
    async def unwatch(self, mailbox: str, wait_id: str) -> None:
        try:
            await self._client.get_workflow_handle(watcher_workflow_id(mailbox)).signal("unwatch", wait_id)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
