"""Notifications from the front doors: the worker's notification settings, and notices started here."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Literal

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from server.credentials import Secrets
from server.settings import Settings
from workflows.activities.notify import FROM_NAME, NotifyConfig
from workflows.activities.slack import SlackConfig
from workflows.models import OversightMode
from workflows.notices import Notice
from workflows.notify import NotifyWorkflow
from workflows.providers.endpoints import parse_endpoint, tls_context
from workflows.providers.smtp_imap.smtp import SmtpServer
from workflows.trust.links import link_key
from workflows.trust.marks import NoticeMarks, mark_key
from workflows.trust.notice_proofs import sign_upgrade_notice


def notice_marks(secrets: Secrets) -> NoticeMarks:
    """The marks of this deployment's notices: every process that reads mail for agents needs them."""
    return NoticeMarks(mark_key(secrets.secret_key))


def notify_config(settings: Settings, secrets: Secrets) -> NotifyConfig:
    """The worker's notification settings; a ``[notifications]`` SMTP password missing is an error now."""
    table = settings.notifications
    channel: SmtpServer | Literal["sandbox"] | None = None
    if table is not None and table.smtp_url:
        endpoint = parse_endpoint(table.smtp_url, "smtp")
        channel = SmtpServer(endpoint, table.password(), tls_context(table.tls_ca_file))
    elif table is not None and table.sandbox:
        channel = "sandbox"
    return NotifyConfig(
        base_url=settings.http_url,
        link_key=link_key(secrets.secret_key),
        secret_key=secrets.secret_key,
        webhook_url=settings.notify_webhook_url,
        webhook_secret=settings.notify_webhook_secret.get_secret_value() if settings.notify_webhook_secret else None,
        link_ttl=timedelta(hours=settings.link_ttl_hours),
        email=settings.notify_email,
        channel=channel,
        from_address=table.from_address if table else NotifyConfig.from_address,
        from_name=table.from_name if table else FROM_NAME,
        marks=notice_marks(secrets),
    )


def slack_config(settings: Settings) -> SlackConfig | None:
    """The worker's Slack app, when one is configured."""
    if settings.slack_bot_token is None:
        return None
    return SlackConfig(
        base_url=settings.http_url,
        bot_token=settings.slack_bot_token.get_secret_value(),
        api_url=settings.slack_api_url,
    )


async def notify_upgrade_requested(
    client: Client,
    settings: Settings,
    mailbox: str,
    request_id: str,
    mode: OversightMode,
    reason: str,
    requested_by: str,
    proof_key: bytes,
) -> None:
    """Tell the mailbox's approvers that an agent asks for a looser mode (once per request).

    The notice names the request, never its code: people read the code where they are signed
    in (dashboard, CLI), and no secret travels through a workflow payload.
    """
    notice = Notice(
        notice_id=f"notify-upgrade-{request_id}",
        kind="upgrade_requested",
        mailbox=mailbox,
        at=datetime.now(UTC),
        requester=requested_by,
        mode=mode,
        upgrade_request_id=request_id,
        reason=reason,
    )
    # Signed here, so the notifier sends only what a front door started (workflows/trust/notice_proofs.py).
    notice = sign_upgrade_notice(proof_key, notice, datetime.now(UTC))
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            NotifyWorkflow.run,
            notice,
            id=notice.notice_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"upgrade of {mailbox} to {mode} requested",
        )
