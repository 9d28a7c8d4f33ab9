"""Admissions gathered per mailbox: one update carries every send waiting to be admitted.

A mailbox workflow takes one update at a time per worker process here, however many sends
of that mailbox are being delivered: the sends that arrive while an update is in flight go
in the next one. Temporal limits the updates in flight on one workflow (10 by default), so an
update per send failed admissions as soon as a mailbox was busy.

The mailbox answers each send id the same way for as long as its delivery may retry, so a
batch that is sent again (after a timeout or an RPC error) counts nobody twice.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows.ids import mailbox_workflow_id
from workflows.models import SEND_ID_CHARS, Admission, AdmitBatch, AdmitRequest

BATCH_MAX = 100
# Well under Temporal's 2 MB payload limit, however many recipients each send has.
BATCH_BYTES = 512 * 1024
# How long an update is tried again while the server says the mailbox is busy, before the
# activity fails this attempt and Temporal retries it later.
BUSY_FOR = 30.0
# Transient answers: the in-flight limit, an overloaded server, an update the server gave up on.
RETRYABLE = {RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}


@dataclass
class _Queue:
    waiting: list[tuple[AdmitRequest, asyncio.Future[Admission]]] = field(default_factory=list)
    draining: bool = False


class AdmissionBatcher:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._queues: dict[str, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def admit(self, mailbox: str, request: AdmitRequest) -> Admission:
        """The mailbox's answer for this send, from the next update to that mailbox."""
        if len(request.send_id) > SEND_ID_CHARS:
            reason = f"send id longer than {SEND_ID_CHARS} characters"
            return Admission(outcome="blocked", mode="read_only", reason=reason)
        queue = self._queues.setdefault(mailbox.lower(), _Queue())
        future: asyncio.Future[Admission] = asyncio.get_running_loop().create_future()
        queue.waiting.append((request, future))
        if not queue.draining:
            queue.draining = True
            task = asyncio.create_task(self._drain(mailbox, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self, mailbox: str, queue: _Queue) -> None:
        try:
            while queue.waiting:
                batch = self._take(queue)
                live = [(r, f) for r, f in batch if not f.done()]
                if not live:
                    continue
                try:
                    answers = await self._update(mailbox, tuple(r for r, _ in live))
                except Exception as err:
                    for _, future in live:
                        if not future.done():
                            future.set_exception(err)
                    continue
                except BaseException:
                    for _, future in batch + queue.waiting:
                        future.cancel()
                    raise
                for (_, future), answer in zip(live, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:
            queue.draining = False
            if not queue.waiting:
                self._queues.pop(mailbox.lower(), None)

    @staticmethod
    def _take(queue: _Queue) -> list[tuple[AdmitRequest, asyncio.Future[Admission]]]:
        taken, size = 0, 0
        for request, _ in queue.waiting:
            size += len(request.model_dump_json())
            if taken and (taken >= BATCH_MAX or size > BATCH_BYTES):
                break
            taken += 1
        batch, queue.waiting = queue.waiting[:taken], queue.waiting[taken:]
        return batch

    async def _update(self, mailbox: str, requests: tuple[AdmitRequest, ...]) -> tuple[Admission, ...]:
        handle = self._client.get_workflow_handle(mailbox_workflow_id(mailbox))
        loop = asyncio.get_running_loop()
        give_up = loop.time() + BUSY_FOR
        pause = 0.05
        while True:
            try:
                answers: list[Admission] = await handle.execute_update(
                    "admit_many",
                    AdmitBatch(requests=requests),
                    id=f"admit-{uuid.uuid4().hex}",
                    result_type=list[Admission],
                )
                return tuple(answers)
            except WorkflowUpdateFailedError as err:
                raise ApplicationError(str(err.cause), non_retryable=True) from err
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    reason = f"mailbox {mailbox} does not exist"
                    return tuple(Admission(outcome="blocked", mode="read_only", reason=reason) for _ in requests)
                if err.status not in RETRYABLE or loop.time() > give_up:
                    raise
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                if loop.time() > give_up:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
