"""Workflows started straight in Temporal: as anything that reaches a stack's gRPC port can (the
forgery tests), or as a newer front door would (the rolling-upgrade tests)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from tests.support.serve import Serve
from workflows import ids
from workflows.mailbox_models import MailboxState, mailbox_memo
from workflows.models import EmailAddress, EmailDraft, MailboxPolicy, OversightMode, SendRequest, SendState
from workflows.temporal import MAILBOX as MAILBOX_KEY
from workflows.temporal import data_converter

QUEUE = "mailgate"  # the task queue of `mailgate serve`


async def attacker_client(stack: Serve) -> Client:
    """A temporalio client of the stack's dev server: mailgate's own converter, without any key."""
    return await Client.connect(f"127.0.0.1:{stack.temporal_port}", data_converter=data_converter())


def send_request(
    mailbox: str,
    key: str | None = None,
    *,
    subject: str = "Q3",
    body: str = "numbers",
    mode: OversightMode = "autonomous",
    proof: str | None = None,
    **fields: Any,
) -> SendRequest:
    """A send's request built as a front door builds it (ids, Message-ID and content hash derived
    the same way) but unsigned: its proof is the one given, if any (sign it with
    `tests.support.proofs.signed_request`)."""
    send_id = ids.send_id(mailbox, key or uuid.uuid4().hex)
    draft = EmailDraft(to=(EmailAddress(address="bob@example.com"),), subject=subject, body=body)
    values: dict[str, Any] = {
        "send_id": send_id,
        "mailbox": mailbox,
        "requester": "agent",
        "draft": draft,
        "message_id": ids.message_id(send_id, mailbox),
        "content_hash": ids.content_hash(draft),
        "policy": MailboxPolicy(mode=mode),
        "requested_at": datetime.now(UTC),
        "approval_timeout": timedelta(hours=1),
        "proof": proof,
        **fields,
    }
    return SendRequest(**values)


async def start_send(
    temporal: Client, request: SendRequest | dict[str, Any], task_queue: str = QUEUE
) -> WorkflowHandle[Any, SendState]:
    """Start a send's workflow under the request's id (a dict: the JSON of a request, as another
    version of mailgate would write it)."""
    send_id = request.send_id if isinstance(request, SendRequest) else str(request["send_id"])
    return await temporal.start_workflow(
        "SendEmailWorkflow", request, id=send_id, task_queue=task_queue, result_type=SendState
    )


async def replace_mailbox(temporal: Client, state: MailboxState, task_queue: str = QUEUE) -> None:
    """End the mailbox's workflow and start another under its id with ``state`` (memo and search
    attribute as mailgate's own carries them), served from ``task_queue``."""
    address = state.config.address
    box_id = ids.mailbox_workflow_id(address)
    await temporal.get_workflow_handle(box_id).terminate("replaced")
    await temporal.start_workflow(
        "MailboxWorkflow",
        state,
        id=box_id,
        task_queue=task_queue,
        memo=mailbox_memo(state.config),
        search_attributes=TypedSearchAttributes([SearchAttributePair(MAILBOX_KEY, ids.mailbox_key(address))]),
    )


async def mode_seen_by_agent(stack: Serve, mailbox: str) -> str:
    """The mailbox's mode as the agent's `get_mailbox` tool reports it."""
    async with stack.mcp() as agent:
        box = await agent.call_tool("get_mailbox", {"mailbox": mailbox})
    assert box.structured_content is not None, box.content
    return str(box.structured_content["mode"])
