"""Mailbox operations for every front door, over the MailboxWorkflow entities in Temporal."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pydantic import BaseModel
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from server.errors import Conflict, InvalidInput, MailgateError, NotFound, Unavailable
from server.settings import MailboxEntry, Settings
from workflows.addresses import AddressError, check_header_text, parse_addr_spec
from workflows.ids import mailbox_key, mailbox_workflow_id
from workflows.mailbox import MailboxState, MailboxWorkflow
from workflows.models import MailboxConfig, ModeChange, OversightMode, Role, is_looser
from workflows.temporal import MAILBOX

CACHE_SECONDS = 1.0


class MailboxSummary(BaseModel):
    address: str
    display_name: str = ""
    oversight_mode: OversightMode
    provider: str = "sandbox"


def parse_mailbox(address: str) -> str:
    try:
        return parse_addr_spec(address.strip())
    except AddressError as exc:
        raise InvalidInput(f"mailbox: {exc}") from exc


def update_error(err: WorkflowUpdateFailedError) -> MailgateError:
    cause = err.cause
    message = cause.message if isinstance(cause, ApplicationError) else str(cause)
    return Conflict(message)


def rpc_error(err: RPCError, what: str) -> MailgateError:
    if err.status == RPCStatusCode.NOT_FOUND:
        return NotFound(what)
    return Unavailable(f"Temporal did not answer: {err.message}")


class Mailboxes:
    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._cache: dict[str, tuple[float, MailboxConfig]] = {}

    def _missing(self, address: str) -> str:
        return f"mailbox {address} does not exist; list_mailboxes shows the mailboxes you can use"

    async def create(
        self,
        address: str,
        *,
        created_by: str,
        role: Role = "human",
        mode: OversightMode | None = None,
        display_name: str = "",
        provider: str = "sandbox",
        entry: MailboxEntry | None = None,
    ) -> MailboxConfig:
        address = parse_mailbox(address)
        default = self._settings.new_mailbox_mode
        if role == "agent" and mode is not None and is_looser(mode, default):
            raise Conflict(
                f"an agent may not create a mailbox looser than {default}; create it, then call request_upgrade"
            )
        try:
            check_header_text(display_name, "display_name", 100)
        except AddressError as exc:
            raise InvalidInput(str(exc)) from exc
        config = MailboxConfig(
            address=address,
            display_name=display_name,
            provider=provider,
            mode=mode or self._settings.new_mailbox_mode,
            approval_window_hours=self._settings.approval_timeout_hours,
        )
        if entry is not None:
            config = config.model_copy(
                update={
                    "display_name": entry.display_name,
                    "provider": entry.provider,
                    "mode": entry.oversight_mode or config.mode,
                    "approvers": tuple(entry.approvers),
                    "reviewers": tuple(entry.reviewers),
                    "allow": tuple(entry.allow),
                    "deny": tuple(entry.deny),
                    "rate_per_hour": entry.rate_per_hour,
                    "rate_per_day": entry.rate_per_day,
                    "approval_window_hours": entry.approval_window_hours or config.approval_window_hours,
                }
            )
        state = MailboxState(config=config, created_by=created_by, created_at=datetime.now(UTC))
        try:
            await self._client.start_workflow(
                MailboxWorkflow.run,
                state,
                id=mailbox_workflow_id(address),
                task_queue=self._settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                memo={
                    "address": address,
                    "mode": config.mode,
                    "display_name": config.display_name,
                    "provider": config.provider,
                },
                search_attributes=TypedSearchAttributes([SearchAttributePair(MAILBOX, mailbox_key(address))]),
                static_summary=f"mailbox {address}",
            )
        except WorkflowAlreadyStartedError:
            raise Conflict(f"mailbox {address} already exists") from None
        self._cache[address.lower()] = (time.monotonic(), config)
        return config

    async def ensure(self, entry: MailboxEntry, created_by: str) -> None:
        """Create a configured mailbox unless it exists; an existing one keeps its mode."""
        try:
            await self.create(entry.address, created_by=created_by, entry=entry, mode=entry.oversight_mode)
        except Conflict:
            return

    async def state(self, address: str) -> MailboxState:
        address = parse_mailbox(address)
        handle = self._client.get_workflow_handle_for(MailboxWorkflow.run, mailbox_workflow_id(address))
        try:
            state = await handle.query(MailboxWorkflow.describe)
        except RPCError as err:
            raise rpc_error(err, self._missing(address)) from err
        self._cache[address.lower()] = (time.monotonic(), state.config)
        return state

    async def config(self, address: str) -> MailboxConfig:
        """The mailbox's configuration, at most a second old.

        Staleness cannot loosen anything: the mailbox workflow re-checks the mode atomically
        just before every delivery.
        """
        cached = self._cache.get(address.lower())
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        return (await self.state(address)).config

    async def list(self) -> list[MailboxSummary]:
        query = "WorkflowType = 'MailboxWorkflow' AND ExecutionStatus = 'Running'"
        summaries = []
        try:
            async for execution in self._client.list_workflows(query):
                memo = await execution.memo()
                summaries.append(
                    MailboxSummary(
                        address=memo["address"],
                        display_name=memo.get("display_name", ""),
                        oversight_mode=memo["mode"],
                        provider=memo.get("provider", "sandbox"),
                    )
                )
        except RPCError as err:
            raise rpc_error(err, "no mailboxes") from err
        return sorted(summaries, key=lambda s: s.address)

    async def set_mode(
        self, address: str, mode: OversightMode, *, actor: str, role: Role, reason: str = ""
    ) -> MailboxConfig:
        address = parse_mailbox(address)
        handle = self._client.get_workflow_handle_for(MailboxWorkflow.run, mailbox_workflow_id(address))
        try:
            config = await handle.execute_update(
                MailboxWorkflow.set_mode, ModeChange(mode=mode, actor=actor, role=role, reason=reason)
            )
        except WorkflowUpdateFailedError as err:
            raise update_error(err) from err
        except RPCError as err:
            raise rpc_error(err, self._missing(address)) from err
        self._cache[address.lower()] = (time.monotonic(), config)
        return config
