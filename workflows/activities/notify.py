"""Activities that tell humans: a signed webhook POST and an email to each approver or reviewer.

Settings and secrets (webhook URL and secret, the link key, the notices' SMTP account) live in
NotifyConfig, built by the worker from its own settings; the workflow passes only the Notice.
Both activities are safe to repeat: the webhook carries the notice id as ``webhook-id``
(receivers dedupe on it), and each email has a Message-ID fixed by the notice and the recipient.

Where a notice email goes: through the humans' own channel (``[notifications]``: an SMTP
account, or the sandbox, which serves sandbox mailboxes by default); only there may it carry
one-click links or an upgrade code, and never to an address that is a mailgate mailbox. With no
such channel it goes through the agent's own mailbox, and then it carries neither. Either way
it bears mailgate's notice mark (``workflows/trust/marks.py``), so no agent read ever returns it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from workflows.activities.send import _beating, send_once
from workflows.ids import mailbox_key, mailbox_workflow_id
from workflows.mail.addresses import AddressError, parse_addr_spec
from workflows.mail.mime import build_message
from workflows.models import DeliveryReceipt, DeliveryRequest, EmailAddress, EmailDraft, MailboxConfig
from workflows.notices import Notice, email_text, webhook_event
from workflows.providers.base import DeliveryError, ProviderSet, TemporaryDeliveryError
from workflows.providers.sandbox.provider import SandboxProvider
from workflows.providers.smtp_imap.smtp import SmtpServer, smtp_send
from workflows.temporal import MAILBOX
from workflows.trust import standard_webhooks
from workflows.trust.ledger import LocalLedger, verified_config
from workflows.trust.links import LinkClaim, make_token, nonce, upgrade_code
from workflows.trust.marks import HEADER, NoticeMarks
from workflows.trust.notice_proofs import notice_problem

WEBHOOK_TIMEOUT = 10.0
FROM_NAME = "mailgate approvals"


@dataclass(frozen=True)
class NotifyConfig:
    """The worker's notification settings. Holds secrets: never put it in a workflow payload."""

    base_url: str
    link_key: bytes | None = None
    secret_key: bytes | None = field(default=None, repr=False)
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    link_ttl: timedelta = timedelta(hours=72)
    email: bool = True
    # The humans' channel: an SMTP account of their own, or the sandbox; None: only agent mailboxes.
    channel: SmtpServer | Literal["sandbox"] | None = field(default=None, repr=False)
    from_address: str = "mailgate@mailgate.local"
    from_name: str = FROM_NAME
    marks: NoticeMarks | None = field(default=None, repr=False)


Route = Literal["smtp", "sandbox", "mailbox"]


class NotifyActivities:
    def __init__(
        self,
        client: Client,
        providers: ProviderSet,
        config: NotifyConfig | None,
        proof_key: bytes | None = None,
        ledger: LocalLedger | None = None,
    ) -> None:
        self._client = client
        self._providers = providers
        self._config = config
        # The mailbox configurations the front doors set: approvers come from there, not from a
        # mailbox workflow someone may have forged in Temporal (workflows/trust/ledger.py).
        self._ledger = ledger
        # Checks that a notice was made by mailgate (workflows/trust/notice_proofs.py); None sends nothing.
        self._proof_key = proof_key

    def _check(self, notice: Notice) -> None:
        """Refuse, before anything is sent, a notice no front door made (one started in Temporal)."""
        problem = "this worker has no key to check notices" if self._proof_key is None else None
        problem = problem or notice_problem(self._proof_key or b"", notice)
        if problem is not None:
            activity.logger.warning("refused to send notice %s: %s", notice.notice_id, problem)
            raise ApplicationError(f"refused: {problem}", type="NoticeRefused", non_retryable=True)

    @activity.defn
    async def notice_recipients(self, notice: Notice) -> list[str]:
        """Email addresses to tell, read from the mailbox now: approvers, or reviewers of monitored sends."""
        if self._config is None or not self._config.email:
            return []
        # From the mailbox's memo (kept current by the mailbox workflow): no query, so no wait
        # for a worker that may be busy admitting the very sends this notice is about.
        description = await self._client.get_workflow_handle(mailbox_workflow_id(notice.mailbox)).describe()
        config = await description.memo_value("config", type_hint=MailboxConfig)
        if self._ledger is not None:
            config, _ = verified_config(await asyncio.to_thread(self._ledger.mailbox_config, notice.mailbox), config)
        people = config.approvers
        if notice.kind == "monitored_sent":
            people = config.reviewers or config.approvers
        addresses: list[str] = []
        for person in people:
            try:
                address = parse_addr_spec(person)
            except AddressError:
                continue  # an approver given by name only has no inbox to write to
            if address.lower() != notice.mailbox.lower() and address not in addresses:
                addresses.append(address)
        return addresses

    @activity.defn
    async def email_notice(self, notice: Notice, recipient: str) -> str:
        config = self._config
        if config is None:
            return "not configured"
        self._check(notice)
        route = self._route(config, notice.mailbox)
        approve_url = reject_url = code = ""
        # Links and codes only through the humans' own channel, and never to a mailbox mailgate
        # manages (an agent can read it): such a recipient gets the notice without them.
        private = route != "mailbox" and not await self._agent_readable(recipient)
        if private and notice.decides and config.link_key is not None:
            approve_url, reject_url = (
                self._link(config, notice, recipient, choice) for choice in ("approve", "reject")
            )
        if private and notice.upgrade_request_id and config.secret_key is not None:
            code = upgrade_code(config.secret_key, notice.upgrade_request_id)
        subject, body = email_text(notice, config.base_url, approve_url, reject_url, code)
        domain = notice.mailbox.rpartition("@")[2]
        tag = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
        message_id = f"<{notice.notice_id}.{tag}@{domain}>"
        mark = config.marks.token(message_id) if config.marks is not None else ""
        if mark:
            body += f"\n-- \n{mark}\n"
        request = DeliveryRequest(
            send_id=notice.notice_id,
            mailbox=notice.mailbox if route == "mailbox" else config.from_address,
            from_name=config.from_name,
            draft=EmailDraft(to=(EmailAddress(address=recipient),), subject=subject, body=body),
            message_id=message_id,
            date=notice.at,
            system=True,
        )
        send: Callable[[], Awaitable[DeliveryReceipt]]
        if isinstance(config.channel, SmtpServer):
            message = build_message(request)
            if mark:
                message[HEADER] = mark
            channel, raw = config.channel, message.as_bytes()

            async def over_smtp() -> DeliveryReceipt:
                await smtp_send(channel, config.from_address, [recipient], raw)
                return DeliveryReceipt(message_id=message_id, recipients=(recipient,))

            # Plain SMTP cannot be asked what it took: the receipt an earlier attempt heartbeated
            # is what keeps a retry from sending it again.
            send = over_smtp
        else:
            # The sandbox (system: no Sent copy), or the agent's own mailbox (no link, no code);
            # de-duplicated by its fixed Message-ID at the provider too, like every send.
            provider = self._sandbox() if route == "sandbox" else self._providers.for_mailbox(notice.mailbox)
            send = functools.partial(provider.send, request)
        try:
            async with _beating() as details:
                receipt = await send_once(send, details)
        except DeliveryError as err:
            raise ApplicationError(str(err), non_retryable=err.permanent) from err
        return receipt.message_id

    def _route(self, config: NotifyConfig, mailbox: str) -> Route:
        if isinstance(config.channel, SmtpServer):
            return "smtp"
        if config.channel == "sandbox" or isinstance(self._providers.for_mailbox(mailbox), SandboxProvider):
            return "sandbox"
        return "mailbox"

    def _sandbox(self) -> SandboxProvider:
        sandbox = self._providers.default
        if not isinstance(sandbox, SandboxProvider):
            raise TemporaryDeliveryError("notifications: sandbox = true, but this worker has no sandbox")
        return sandbox

    async def _agent_readable(self, address: str) -> bool:
        query = (
            f"WorkflowType = 'MailboxWorkflow' AND {MAILBOX.name} = '{mailbox_key(address)}' "
            "AND ExecutionStatus = 'Running'"
        )
        return (await self._client.count_workflows(query)).count > 0

    def _link(self, config: NotifyConfig, notice: Notice, recipient: str, choice: str) -> str:
        assert config.link_key is not None
        assert notice.decides is not None
        claim = LinkClaim(
            send_id=notice.decides,  # a send's id, or a trash request's: the link decides that one only
            decision="approve" if choice == "approve" else "reject",
            approver=recipient,
            # From the notice's own time, so a retry writes the same link.
            expires=int((notice.at + config.link_ttl).timestamp()),
            nonce=nonce(config.link_key, notice.notice_id, recipient.lower(), choice),
            issued=int(notice.at.timestamp()),
        )
        return f"{config.base_url}/links/{make_token(config.link_key, claim)}"

    @activity.defn
    async def post_webhook(self, notice: Notice) -> str:
        config = self._config
        if config is None or not config.webhook_url or not config.webhook_secret:
            return "not configured"
        self._check(notice)
        base = config.base_url
        body = json.dumps(webhook_event(notice, base), separators=(",", ":")).encode()
        # Same webhook-id on every attempt (receivers dedupe on it), a fresh timestamp and signature.
        headers = standard_webhooks.headers(config.webhook_secret, notice.notice_id, int(time.time()), body)
        headers["content-type"] = "application/json"
        headers["user-agent"] = "mailgate-notifier"
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT, follow_redirects=False) as http:
            try:
                response = await http.post(config.webhook_url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise ApplicationError(f"webhook to {config.webhook_url} failed: {exc!r}") from exc
        if not response.is_success:
            raise ApplicationError(f"webhook to {config.webhook_url} answered {response.status_code}")
        return f"delivered ({response.status_code})"
