"""MailboxWatcherWorkflow: one per mailbox, noticing new mail for as long as the mailbox lives.

It wakes on a poke (the sandbox pokes on every delivery and release) or every poll interval
(for providers that must be polled), scans what became visible since its cursor, tells
reply waits about their replies, and starts the configured intake workflow for each inbound
email. It continues as new as its history grows, carrying its cursor and waits along.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.activities.inbox import InboxActivities
    from workflows.models import Frozen
    from workflows.read_models import DispatchRequest, IntakeConfig, ScanRequest, Watch, WatcherState

HISTORY_LIMIT = 2000
# What the watcher carries across continue-as-new is its cursor, its configuration and one
# Watch per running reply wait (ids only, ~150 B encoded): at most MAX_WATCHES of them, about
# 300 KB, far below Temporal's 2 MB. wait_for_reply refuses a new wait when a mailbox has this
# many running; should more arrive anyway, the oldest watch is dropped.
MAX_WATCHES = 2000
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


class WatcherConfig(Frozen):
    intake: IntakeConfig | None = None
    poll_interval: timedelta = timedelta(seconds=60)


@workflow.defn
class MailboxWatcherWorkflow:
    @workflow.init
    def __init__(self, state: WatcherState) -> None:
        self._mailbox = state.mailbox
        self._cursor = state.cursor
        self._watches = {w.wait_id: w for w in state.watches}
        self._intake = state.intake
        self._poll = state.poll_interval
        self._poked = True  # look once right away
        self._check_watches = bool(state.watches)

    @workflow.run
    async def run(self, state: WatcherState) -> None:
        while not self._history_full():
            if not self._poked:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self._poked or self._history_full(), timeout=self._poll, timeout_summary="poll"
                    )
            self._poked = False
            await self._scan()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._snapshot())

    async def _scan(self) -> None:
        check, self._check_watches = self._check_watches, False
        result = await workflow.execute_activity_method(
            InboxActivities.scan,
            ScanRequest(
                mailbox=self._mailbox,
                cursor=self._cursor,
                watches=tuple(self._watches.values()),
                check_watches=check,
            ),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
        )
        self._cursor = result.cursor
        replies = tuple((wait_id, reply) for wait_id, reply in result.replies if wait_id in self._watches)
        for wait_id, _ in replies:
            del self._watches[wait_id]
        inbound = result.inbound if self._intake is not None else ()
        if replies or inbound:
            await workflow.execute_activity_method(
                InboxActivities.dispatch,
                DispatchRequest(mailbox=self._mailbox, replies=replies, intake=self._intake, inbound=inbound),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RETRY,
            )
        if result.more or result.recheck:
            self._poked = True
        if result.recheck:
            self._check_watches = True

    @workflow.signal
    def poke(self) -> None:
        self._poked = True

    @workflow.signal
    def watch(self, watch: Watch) -> None:
        self._watches.pop(watch.wait_id, None)
        self._watches[watch.wait_id] = watch
        while len(self._watches) > MAX_WATCHES:
            oldest = next(iter(self._watches))
            del self._watches[oldest]
            workflow.logger.warning("dropped the watch of %s: over %d reply waits", oldest, MAX_WATCHES)
        self._check_watches = True
        self._poked = True

    @workflow.signal
    def unwatch(self, wait_id: str) -> None:
        self._watches.pop(wait_id, None)

    @workflow.signal
    def configure(self, config: WatcherConfig) -> None:
        self._intake = config.intake
        self._poll = config.poll_interval

    @workflow.query
    def describe(self) -> WatcherState:
        return self._snapshot()

    def _history_full(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT

    def _snapshot(self) -> WatcherState:
        return WatcherState(
            mailbox=self._mailbox,
            cursor=self._cursor,
            watches=tuple(self._watches.values()),
            intake=self._intake,
            poll_interval=self._poll,
        )
