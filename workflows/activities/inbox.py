"""Activities of the inbound workflows. Each is safe to repeat: scans only read, reply
signals are ignored by a wait that already has its reply, and intake workflows are started
under an id derived from the mailbox and Message-ID, so a repeat finds them started.
"""

from __future__ import annotations

from collections.abc import Iterable

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from workflows.ids import intake_workflow_id, watcher_workflow_id
from workflows.providers.base import ProviderSet
from workflows.read_models import DispatchRequest, EmailSummary, ScanRequest, ScanResult, Watch
from workflows.watcher_client import signal_watcher

SCAN_BATCH = 100
# What one scan hands the watcher (and the watcher hands dispatch), in encoded bytes: far
# below Temporal's 2 MB payload limit, which a result must never reach (the watcher would
# retry that scan forever). A batch over it is asked for again, smaller.
SCAN_BYTES = 1_000_000


def _size(emails: Iterable[EmailSummary]) -> int:
    return sum(len(e.model_dump_json()) for e in emails)


class InboxActivities:
    def __init__(self, client: Client, providers: ProviderSet) -> None:
        self._client = client
        self._providers = providers

    @activity.defn
    async def scan(self, request: ScanRequest) -> ScanResult:
        """What became visible since the cursor, and the first reply for each registered wait."""
        provider = self._providers.for_mailbox(request.mailbox)
        limit = SCAN_BATCH
        while True:
            changes = await provider.changes(request.mailbox, request.cursor, limit)
            inbound = tuple(e.bounded() for e in changes.emails if e.folder == "inbox")
            size = _size(inbound)
            if size <= SCAN_BYTES or limit == 1:
                break
            limit = max(1, limit // 2)
        replies: list[tuple[str, EmailSummary]] = []
        recheck = False
        if inbound or request.check_watches:
            for watch in request.watches:
                reply = await provider.find_reply(request.mailbox, watch.message_id)
                if reply is None:
                    continue
                reply = reply.bounded()
                size += _size([reply])
                if size > SCAN_BYTES and (inbound or replies):
                    recheck = True  # the next scan finds it again
                    break
                replies.append((watch.wait_id, reply))
        return ScanResult(
            cursor=changes.cursor, inbound=inbound, replies=tuple(replies), more=changes.more, recheck=recheck
        )

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
