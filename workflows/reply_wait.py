"""ReplyWaitWorkflow: waiting, for minutes or days, for the first reply to one send.

The wait lives here, not in the MCP call: an agent that disconnects and calls
wait_for_reply again attaches to the same wait (the id derives from the send), and a reply
that came meanwhile is the workflow's result. The mailbox's watcher signals the reply.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.activities.inbox import InboxActivities
    from workflows.patches import CONTINUE_PATCH
    from workflows.read_models import EmailSummary, ReplyWaitRequest, ReplyWaitResult, Watch

# Every wait_for_reply call signals the wait (``extend``), so its history grows with callers:
# past this many events it continues as new, carrying its request with the latest deadline.
HISTORY_LIMIT = 2000


@workflow.defn
class ReplyWaitWorkflow:
    @workflow.init
    def __init__(self, request: ReplyWaitRequest) -> None:
        self._request = request
        self._deadline = request.deadline
        self._reply: EmailSummary | None = None
        self._may_continue = False

    @workflow.run
    async def run(self, request: ReplyWaitRequest) -> ReplyWaitResult:
        # Decided once, first: a wait from before this version (no marker) never continues as new.
        self._may_continue = workflow.patched(CONTINUE_PATCH)
        await workflow.execute_activity_method(
            InboxActivities.watch,
            args=[request.mailbox, Watch(wait_id=request.wait_id, message_id=request.message_id)],
            start_to_close_timeout=timedelta(seconds=30),
        )
        while self._reply is None:
            deadline = self._deadline
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                break
            if self._full():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._reply is None:
                    workflow.continue_as_new(request.model_copy(update={"deadline": self._deadline}))
                continue
            try:
                await workflow.wait_condition(
                    lambda deadline=deadline: self._reply is not None or self._deadline != deadline or self._full(),  # type: ignore[misc]
                    timeout=remaining,
                    timeout_summary="reply deadline",
                )
            except TimeoutError:
                continue
        if self._reply is None:
            await workflow.execute_activity_method(
                InboxActivities.unwatch,
                args=[request.mailbox, request.wait_id],
                start_to_close_timeout=timedelta(seconds=30),
            )
            return ReplyWaitResult(status="timeout", send_id=request.send_id)
        return ReplyWaitResult(status="replied", send_id=request.send_id, reply=self._reply)

    @workflow.signal
    def reply_found(self, reply: EmailSummary) -> None:
        if self._reply is None:
            self._reply = reply

    @workflow.signal
    def extend(self, deadline: datetime) -> None:
        """A later caller that wants to wait longer moves the deadline out (never in)."""
        self._deadline = max(self._deadline, deadline)

    @workflow.query
    def deadline(self) -> datetime:
        return self._deadline

    def _full(self) -> bool:
        """Time to continue as new (never for a history from before that was possible)."""
        if not self._may_continue:
            return False
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT
