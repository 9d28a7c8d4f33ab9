"""Activities that tell humans: a signed webhook POST and an email to each approver or reviewer.

Settings and secrets (webhook URL and secret, the link key) live in NotifyConfig, built by the
worker from its own settings; the workflow passes only the Notice. Both activities are safe to
repeat: the webhook carries the notice id as ``webhook-id`` (receivers dedupe on it), and each
email has a Message-ID fixed by the notice and the recipient (the provider stores it once).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from workflows import standard_webhooks
from workflows.addresses import AddressError, parse_addr_spec
from workflows.ids import mailbox_key, mailbox_workflow_id
from workflows.links import LinkClaim, make_token, nonce, upgrade_code
from workflows.models import DeliveryRequest, EmailAddress, EmailDraft, MailboxConfig
from workflows.notices import Notice, email_text, webhook_event
from workflows.providers.base import DeliveryError, ProviderSet
from workflows.temporal import MAILBOX

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


class NotifyActivities:
    def __init__(self, client: Client, providers: ProviderSet, config: NotifyConfig | None) -> None:
        self._client = client
        self._providers = providers
        self._config = config

    @activity.defn
    async def notice_recipients(self, notice: Notice) -> list[str]:
        """Email addresses to tell, read from the mailbox now: approvers, or reviewers of monitored sends."""
        if self._config is None or not self._config.email:
            return []
        # From the mailbox's memo (kept current by the mailbox workflow): no query, so no wait
        # for a worker that may be busy admitting the very sends this notice is about.
        description = await self._client.get_workflow_handle(mailbox_workflow_id(notice.mailbox)).describe()
        config = await description.memo_value("config", type_hint=MailboxConfig)
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
        approve_url = reject_url = code = ""
        # A mailbox mailgate manages is one an agent can read: it gets the notice, never a link or code.
        private = not await self._agent_readable(recipient)
        if private and notice.kind == "approval_requested" and notice.send_id and config.link_key is not None:
            approve_url, reject_url = (
                self._link(config, notice, recipient, choice) for choice in ("approve", "reject")
            )
        if private and notice.upgrade_request_id and config.secret_key is not None:
            code = upgrade_code(config.secret_key, notice.upgrade_request_id)
        subject, body = email_text(notice, config.base_url, approve_url, reject_url, code)
        domain = notice.mailbox.rpartition("@")[2]
        tag = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
        request = DeliveryRequest(
            send_id=notice.notice_id,
            mailbox=notice.mailbox,
            from_name=FROM_NAME,
            draft=EmailDraft(to=(EmailAddress(address=recipient),), subject=subject, body=body),
            message_id=f"<{notice.notice_id}.{tag}@{domain}>",
            date=notice.at,
            system=True,
        )
        try:
            receipt = await self._providers.for_mailbox(notice.mailbox).send(request)
        except DeliveryError as err:
            raise ApplicationError(str(err), non_retryable=err.permanent) from err
        return receipt.message_id

    async def _agent_readable(self, address: str) -> bool:
        query = (
            f"WorkflowType = 'MailboxWorkflow' AND {MAILBOX.name} = '{mailbox_key(address)}' "
            "AND ExecutionStatus = 'Running'"
        )
        return (await self._client.count_workflows(query)).count > 0

    def _link(self, config: NotifyConfig, notice: Notice, recipient: str, choice: str) -> str:
        assert config.link_key is not None
        assert notice.send_id is not None
        claim = LinkClaim(
            send_id=notice.send_id,
            decision="approve" if choice == "approve" else "reject",
            approver=recipient,
            # From the notice's own time, so a retry writes the same link.
            expires=int((notice.at + config.link_ttl).timestamp()),
            nonce=nonce(config.link_key, notice.notice_id, recipient.lower(), choice),
        )
        return f"{config.base_url}/links/{make_token(config.link_key, claim)}"

    @activity.defn
    async def post_webhook(self, notice: Notice) -> str:
        config = self._config
        if config is None or not config.webhook_url or not config.webhook_secret:
            return "not configured"
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
