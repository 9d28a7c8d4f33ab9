"""Mailbox operations for every front door, over the MailboxWorkflow entities in Temporal."""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import TypeVar

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError
from temporalio.workflow import UpdateMethodMultiParam

from server.errors import Conflict, InvalidInput, NotFound, rpc_error, update_error
from server.notifications import notify_upgrade_requested
from server.settings import MailboxEntry, Settings
from server.validation import PolicyChanges, check_text, parse_mailbox
from server.views import MailboxSummary, Review, Upgrade
from workflows.activities.notify import NotifyConfig
from workflows.ids import mailbox_key, mailbox_workflow_id
from workflows.mailbox import MailboxWorkflow
from workflows.mailbox_models import (
    ActionNote,
    MailboxState,
    Reconfigure,
    ReviewAck,
    ReviewItem,
    UpgradeAsk,
    UpgradeRedeem,
    UpgradeRequest,
    mailbox_memo,
)
from workflows.models import MailboxConfig, ModeChange, OversightMode, Role, is_looser
from workflows.temporal import MAILBOX
from workflows.trust.ledger import LocalLedger, verified_config
from workflows.trust.links import upgrade_code
from workflows.trust.proofs import proof_key, sign_change

log = logging.getLogger("mailgate")
CACHE_SECONDS = 1.0
CODE_LENGTH = 8
NOTICES_FROM = NotifyConfig.from_address  # where notices come from without a [notifications] table
T = TypeVar("T")
R = TypeVar("R")


async def mailbox_config_of(execution: WorkflowExecution) -> MailboxConfig:
    """A mailbox's configuration from its memo; a memo from before it held one has the mode only."""
    memo = await execution.memo()
    if "config" in memo:
        return await execution.memo_value("config", type_hint=MailboxConfig)
    return MailboxConfig(
        address=memo["address"],
        display_name=memo.get("display_name", ""),
        provider=memo.get("provider", "sandbox"),
        mode=memo["mode"],
    )


class Mailboxes:
    def __init__(self, client: Client, settings: Settings, secret_key: bytes, *, ledger: LocalLedger) -> None:
        self._client = client
        # The configurations these front doors set, kept outside Temporal (workflows/trust/ledger.py):
        # what a mailbox workflow says is checked against it, so a forged one loosens nothing.
        self._ledger = ledger
        self._settings = settings
        self._secret_key = secret_key
        # Signs mode changes and reconfigurations: only these front doors can loosen a mailbox.
        self._proof_key = proof_key(secret_key)
        # address -> (when read, the record it was checked against, the configuration to act on)
        self._cache: dict[str, tuple[float, MailboxConfig | None, MailboxConfig]] = {}

    def _missing(self, address: str) -> NotFound:
        return NotFound(
            f"mailbox {address} does not exist",
            next_steps={
                "mcp": "list_mailboxes shows the mailboxes you can use",
                "cli": "`mailgate mailbox list` shows the mailboxes",
                "api": "GET /api/mailboxes lists the mailboxes",
            },
        )

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
        notices_from = self._settings.notifications.from_address if self._settings.notifications else NOTICES_FROM
        if address.lower() == notices_from.lower():
            # Humans reply to notices, quoting their links and codes: that address is never an agent's.
            raise InvalidInput(f"{address} is the From address of mailgate's notices to humans; it cannot be a mailbox")
        default = self._settings.new_mailbox_mode
        if role == "agent" and mode is not None and is_looser(mode, default):
            raise Conflict(
                f"an agent may not create a mailbox looser than {default}; create it, then call request_upgrade"
            )
        check_text(display_name, "display_name", 100)
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
                    "slack_channel": entry.slack_channel,
                    "client_approval": entry.client_approval,
                }
            )
        state = MailboxState(config=config, created_by=created_by, created_at=datetime.now(UTC))
        if self._ledger.mailbox_config(address) is None:
            # Before the start: a crash between the two must not leave a mailbox without a record.
            self._ledger.record_config(config)
        try:
            await self._client.start_workflow(
                MailboxWorkflow.run,
                state,
                id=mailbox_workflow_id(address),
                task_queue=self._settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                memo=mailbox_memo(config),
                search_attributes=TypedSearchAttributes([SearchAttributePair(MAILBOX, mailbox_key(address))]),
                static_summary=f"mailbox {address}",
            )
        except WorkflowAlreadyStartedError:
            raise Conflict(f"mailbox {address} already exists") from None
        self._ledger.record_config(config)
        self._remember(address, config, config)
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
        recorded = self._ledger.mailbox_config(address)
        state = state.model_copy(update={"config": self._verified(state.config, recorded)})
        self._remember(address, recorded, state.config)
        return state

    def _remember(self, address: str, recorded: MailboxConfig | None, config: MailboxConfig) -> None:
        self._cache[address.lower()] = (time.monotonic(), recorded, config)

    def just_read(self, address: str) -> MailboxConfig | None:
        """What ``config`` answered for this mailbox within the last second, without asking again:
        only for what decides nothing (whether to offer a human the dashboard link right after a
        send read the configuration), never for a check: ``config`` reads mailgate's record."""
        cached = self._cache.get(address.lower())
        return cached[2] if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS else None

    def _verified(self, live: MailboxConfig, recorded: MailboxConfig | None) -> MailboxConfig:
        """The configuration to act on: the mailbox workflow's when it is the one recorded here,
        else the record at the stricter mode (a forged workflow in Temporal loosens nothing)."""
        config, problem = verified_config(recorded, live)
        if problem:
            log.warning("%s; acting on mailgate's own record (mode %s)", problem, config.mode)
        return config

    async def _require_record(self, address: str) -> None:
        """Refuse a change to a mailbox this front door has no record of: not found if it does not
        exist at all (the next step lists mailboxes), else gated and unchangeable."""
        if self._ledger.mailbox_config(address) is None:
            try:
                await self._client.get_workflow_handle(mailbox_workflow_id(address)).describe()
            except RPCError as err:
                raise rpc_error(err, self._missing(address)) from err
            self._recorded(address)

    def _recorded(self, address: str) -> MailboxConfig:
        recorded = self._ledger.mailbox_config(address)
        if recorded is None:
            raise Conflict(
                f"mailbox {address} was not created through mailgate's front doors (it has no configuration "
                "recorded here); it is treated as gated and cannot be changed"
            )
        return recorded

    async def config(self, address: str) -> MailboxConfig:
        """The mailbox's configuration from its memo (no worker needed), at most a second old.

        The record is read every time (one local query, where Temporal's describe takes a round
        trip): a change made through another front door or the CLI is recorded before its command
        returns, so the very next call here goes by it. Only a change made in Temporal alone can
        be missed for that second, and it cannot loosen anything: delivery checks the mailbox's
        mode again, atomically, just before the send goes out.
        """
        address = parse_mailbox(address)
        recorded = self._ledger.mailbox_config(address)
        cached = self._cache.get(address.lower())
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS and cached[1] == recorded:
            return cached[2]
        handle = self._client.get_workflow_handle(mailbox_workflow_id(address))
        try:
            description = await handle.describe()
        except RPCError as err:
            raise rpc_error(err, self._missing(address)) from err
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise self._missing(address)
        config = self._verified(await description.memo_value("config", type_hint=MailboxConfig), recorded)
        self._remember(address, recorded, config)
        return config

    async def all(self) -> list[MailboxSummary]:
        query = (
            f"WorkflowType = 'MailboxWorkflow' AND TaskQueue = '{self._settings.task_queue}' "
            "AND ExecutionStatus = 'Running'"
        )
        summaries = []
        try:
            async for execution in self._client.list_workflows(query):
                live = await mailbox_config_of(execution)
                config = self._verified(live, self._ledger.mailbox_config(live.address))
                summaries.append(
                    MailboxSummary(
                        address=config.address,
                        display_name=config.display_name,
                        oversight_mode=config.mode,
                        provider=config.provider,
                    )
                )
        except RPCError as err:
            raise rpc_error(err, "no mailboxes") from err
        return sorted(summaries, key=lambda s: s.address)

    async def adopt_existing(self) -> list[str]:
        """Once per data dir (the first start of a mailgate that keeps this record): record the
        mailboxes an older mailgate made, as they stand. Later, only front doors record."""
        query = (
            f"WorkflowType = 'MailboxWorkflow' AND TaskQueue = '{self._settings.task_queue}' "
            "AND ExecutionStatus = 'Running'"
        )
        configs = [await mailbox_config_of(execution) async for execution in self._client.list_workflows(query)]
        return self._ledger.adopt(configs)

    async def _update(self, address: str, update: UpdateMethodMultiParam[[MailboxWorkflow, T], R], arg: T) -> R:
        handle = self._client.get_workflow_handle_for(MailboxWorkflow.run, mailbox_workflow_id(address))
        try:
            return await handle.execute_update(update, arg)
        except WorkflowUpdateFailedError as err:
            raise update_error(err) from err
        except RPCError as err:
            raise rpc_error(err, self._missing(address)) from err

    async def set_mode(
        self, address: str, mode: OversightMode, *, actor: str, role: Role, reason: str = ""
    ) -> MailboxConfig:
        address = parse_mailbox(address)
        change = ModeChange(mode=mode, actor=actor, role=role, reason=reason)
        change = sign_change(self._proof_key, "mode", mailbox_workflow_id(address), change, datetime.now(UTC))
        await self._require_record(address)
        await self._update(address, MailboxWorkflow.set_mode, change)
        # What this front door asked for, on top of its own record: not what the workflow answers.
        config = self._recorded(address).model_copy(update={"mode": mode})
        self._ledger.record_config(config)
        self._remember(address, config, config)
        return config

    async def record_action(self, address: str, kind: str, actor: str, detail: str) -> None:
        """Put an agent's action on stored mail in the mailbox's audit log."""
        note = ActionNote(kind=kind, actor=actor, detail=detail)
        await self._update(parse_mailbox(address), MailboxWorkflow.record_action, note)

    async def configure(self, address: str, changes: PolicyChanges, *, actor: str) -> MailboxConfig:
        """A human's change of a mailbox's policies; what is not given stays as it is."""
        address = parse_mailbox(address)
        current = (await self.state(address)).config
        await self._require_record(address)
        config = current.model_copy(update=changes.validated())
        change = sign_change(
            self._proof_key,
            "configure",
            mailbox_workflow_id(address),
            Reconfigure(config=config, actor=actor),
            datetime.now(UTC),
        )
        await self._update(address, MailboxWorkflow.configure, change)
        updated = self._recorded(address).model_copy(update=changes.validated())
        self._ledger.record_config(updated)
        self._remember(address, updated, updated)
        return updated

    async def request_upgrade(self, address: str, mode: OversightMode, reason: str, *, requested_by: str) -> Upgrade:
        address = parse_mailbox(address)
        reason = check_text(reason, "reason", 500)
        ask = UpgradeAsk(request_id=uuid.uuid4().hex[:12], mode=mode, reason=reason, requested_by=requested_by)
        request = await self._update(address, MailboxWorkflow.request_upgrade, ask)
        if request.request_id != ask.request_id or request.mode != mode:
            # The code goes out for the request asked here, not for one the workflow names (it could
            # name an older request for a looser mode).
            raise Conflict(f"the workflow of {address} answered another upgrade request; nothing was sent")
        self._ledger.record_upgrade(ask.request_id, address, mode)
        await notify_upgrade_requested(
            self._client, self._settings, address, ask.request_id, mode, reason, requested_by, self._proof_key
        )
        return Upgrade(mailbox=address, request=request, code=self.upgrade_code(ask.request_id))

    async def apply_upgrade(self, address: str, code: str, *, actor: str) -> MailboxConfig:
        """Redeem a human's one-time code. The code is an HMAC of the request id under the server key,
        so it never sits in Temporal, and only someone the humans told it to can present it."""
        address = parse_mailbox(address)
        presented = code.strip().replace("-", "").upper()
        state = await self.state(address)
        now = datetime.now(UTC)
        match = next(
            (
                u.request_id
                for u in state.upgrades
                if u.status == "pending"
                and u.expires_at > now
                and hmac.compare_digest(self.upgrade_code(u.request_id), presented)
            ),
            None,
        )
        redeem = sign_change(
            self._proof_key, "upgrade", mailbox_workflow_id(address), UpgradeRedeem(request_id=match, actor=actor), now
        )
        await self._require_record(address)
        # The mode this front door recorded for the request the code matched, never the workflow's
        # answer: a mailbox workflow served by someone else's worker says yes to any code.
        mode = self._ledger.upgrade_mode(match) if match else None
        if match is not None and mode is None:
            raise Conflict(
                "this upgrade code was used already (or its request is from before mailgate kept a record); "
                "call request_upgrade again"
            )
        await self._update(address, MailboxWorkflow.redeem_upgrade, redeem)
        if mode is None:
            log.warning("the workflow of %s accepted an upgrade code that matched no request", address)
            raise Conflict("wrong or expired upgrade code")
        # Forgotten once redeemed: a mailbox workflow served by someone else's worker would take the
        # same code again after a human tightened the mailbox.
        if match is None or self._ledger.take_upgrade(match) is None:
            raise Conflict("this upgrade code was used already; call request_upgrade again")
        config = self._recorded(address).model_copy(update={"mode": mode})
        self._ledger.record_config(config)
        self._remember(address, config, config)
        return config

    def upgrade_code(self, request_id: str) -> str:
        # Shared with the notifier, which writes the code into the approvers' email.
        return upgrade_code(self._secret_key, request_id, CODE_LENGTH)

    def recorded_upgrade(self, request: UpgradeRequest) -> UpgradeRequest | None:
        """The request with the mode mailgate recorded when it was asked, None without a record: a
        forged mailbox workflow could list an old request for a looser mode under a milder one."""
        mode = self._ledger.upgrade_mode(request.request_id)
        return None if mode is None else request.model_copy(update={"mode": mode})

    async def upgrades(self, mailbox: str | None = None) -> list[Upgrade]:
        """Upgrade requests with their codes, for humans only (CLI, approver API, dashboard)."""
        found = []
        now = datetime.now(UTC)
        for address in await self._addresses(mailbox):
            for request in (await self.state(address)).upgrades:
                request = request.as_of(now)
                recorded = self.recorded_upgrade(request)
                # A code is only worth showing while it can still be redeemed.
                code = self.upgrade_code(request.request_id) if recorded and request.status == "pending" else ""
                found.append(Upgrade(mailbox=address, request=recorded or request, code=code))
        return sorted(found, key=lambda u: u.request.requested_at, reverse=True)

    async def reviews(self, mailbox: str | None = None, *, include_acked: bool = False) -> list[Review]:
        found = []
        for address in await self._addresses(mailbox):
            for item in (await self.state(address)).reviews:
                if include_acked or item.acked_by is None:
                    found.append(Review(mailbox=address, **item.model_dump()))
        return sorted(found, key=lambda r: r.at)

    async def ack_review(self, address: str, send_id: str, *, actor: str) -> ReviewItem:
        return await self._update(
            parse_mailbox(address), MailboxWorkflow.ack_review, ReviewAck(send_id=send_id, actor=actor)
        )

    async def _addresses(self, mailbox: str | None) -> list[str]:
        if mailbox:
            return [parse_mailbox(mailbox)]
        return [m.address for m in await self.all()]
