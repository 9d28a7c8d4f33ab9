"""A MailboxWorkflow started by hand on a test server, as the mailbox service would start it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from workflows.ids import mailbox_workflow_id
from workflows.mailbox import MailboxWorkflow
from workflows.mailbox_models import MailboxState
from workflows.models import MailboxConfig


async def start_mailbox(
    env: WorkflowEnvironment, queue: str, **config: object
) -> tuple[str, WorkflowHandle[MailboxWorkflow, None]]:
    address = f"box-{uuid.uuid4().hex[:8]}@mailgate.local"
    state = MailboxState(
        config=MailboxConfig(address=address, **config),
        created_by="tests",
        created_at=datetime.now(UTC),
    )
    handle = await env.client.start_workflow(
        MailboxWorkflow.run, state, id=mailbox_workflow_id(address), task_queue=queue
    )
    return address, handle
