"""Bare Temporal: the same shape as a gated send, without mailgate (its own module, so the
workflow sandbox re-imports nothing heavy)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

MAILBOX = "agent@mailgate.local"


@activity.defn
async def bare_deliver(payload: dict[str, Any]) -> str:
    return str(payload["id"])


@workflow.defn
class BareSendWorkflow:
    """What a gated send is to Temporal: start, wait for one signal, run one activity."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.run
    async def run(self, payload: dict[str, Any]) -> str:
        await workflow.wait_condition(lambda: self.approved)
        return await workflow.execute_activity(bare_deliver, payload, start_to_close_timeout=timedelta(seconds=30))

    @workflow.signal
    def approve(self) -> None:
        self.approved = True

    @workflow.update
    def approve_answered(self) -> bool:
        """A decision the caller hears back about, as mailgate's approver API answers one."""
        self.approved = True
        return True


def bare_payload(i: int) -> dict[str, Any]:
    """About the size of a send request: recipients, subject, body, ids."""
    return {
        "id": i,
        "to": [{"address": "bob@example.com", "name": "Bob"}],
        "subject": f"Benchmark {i}",
        "body": "Hello Bob,\n\nthe numbers are in.\n\nBest,\nthe agent\n" * 3,
        "mailbox": MAILBOX,
    }
