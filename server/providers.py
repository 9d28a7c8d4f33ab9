"""The providers of a running mailgate, chosen per mailbox by the configuration, and wired to
Temporal for inbound mail (holds and pokes).

Secrets are read here, from the environment, into the provider objects of this process; they
never enter a workflow's arguments, results or history.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client

from server.credentials import load_secrets
from server.inbound_hooks import TemporalInbound
from server.settings import MailboxEntry, Settings, SettingsError
from server.stores import grant_database, imap_database, multimail_database
from workflows.providers.base import EmailProvider, InboundHooks, ProviderSet, UnavailableProvider
from workflows.providers.endpoints import parse_endpoint
from workflows.providers.multimail.account import MultiMailConfig
from workflows.providers.multimail.holds import HoldStore
from workflows.providers.multimail.provider import MultiMailProvider
from workflows.providers.oauth import GrantStore, OAuthTokens
from workflows.providers.sandbox.provider import SandboxProvider
from workflows.providers.sandbox.store import SandboxStore
from workflows.providers.smtp_imap.index import ImapIndex
from workflows.providers.smtp_imap.provider import SmtpImapProvider
from workflows.providers.smtp_imap.session import SmtpImapConfig
from workflows.trust.marks import NoticeMarks


def smtp_imap_provider(
    settings: Settings, entry: MailboxEntry, hooks: InboundHooks, marks: NoticeMarks | None = None
) -> SmtpImapProvider:
    assert entry.smtp_url is not None
    config = SmtpImapConfig(
        address=entry.address,
        smtp=parse_endpoint(entry.smtp_url, "smtp"),
        imap=parse_endpoint(entry.imap_url, "imap") if entry.imap_url else None,
        sent_folder=entry.sent_folder,
        inbox_folder=entry.inbox_folder,
        server_files_sent=entry.server_files_sent,
        sent_check=entry.sent_check,
        tls_ca_file=entry.tls_ca_file,
    )
    index = ImapIndex(imap_database(settings, entry.address), entry.address, marks)
    oauth = None
    if entry.auth == "oauth2":
        store = GrantStore(settings.data_dir, load_secrets(settings).secret_key, grant_database(settings))
        oauth = OAuthTokens(entry.oauth_client(), entry.oauth_secret(), store)
    return SmtpImapProvider(config, entry.secret(), index, hooks, oauth=oauth)


def multimail_provider(
    settings: Settings, entry: MailboxEntry, hooks: InboundHooks, marks: NoticeMarks | None = None
) -> MultiMailProvider:
    assert entry.multimail_mailbox_id is not None
    config = MultiMailConfig(
        address=entry.address,
        mailbox_id=entry.multimail_mailbox_id,
        base_url=entry.base_url or MultiMailConfig.model_fields["base_url"].default,
        decision_poll=timedelta(seconds=entry.decision_poll_seconds),
    )
    secret = entry.secret()
    holds = HoldStore(multimail_database(settings, entry.address))
    return MultiMailProvider(config, secret, hooks=hooks, holds=holds, marks=marks)


def provider_for(
    settings: Settings, entry: MailboxEntry, hooks: InboundHooks, marks: NoticeMarks | None = None
) -> EmailProvider:
    if entry.provider == "smtp_imap":
        return smtp_imap_provider(settings, entry, hooks, marks)
    if entry.provider == "multimail":
        return multimail_provider(settings, entry, hooks, marks)
    raise SettingsError(f"mailbox {entry.address}: provider: {entry.provider!r} is served by the sandbox")


def build_providers(settings: Settings, client: Client, store: SandboxStore, *, strict: bool = True) -> ProviderSet:
    """One provider per configured mailbox, the sandbox for the rest.

    ``strict``: a configured mailbox whose secret is missing stops start-up (serve, worker).
    Otherwise (CLI commands, which rarely touch mail) that mailbox answers with the same error.
    Every provider hides mailgate's own notices the way ``store`` does (its ``marks``).
    """
    hooks = TemporalInbound(client, settings.task_queue, timedelta(seconds=settings.inbound_poll_seconds))
    by_address: dict[str, EmailProvider] = {}
    for entry in settings.mailboxes:
        if entry.provider == "sandbox":
            continue
        try:
            by_address[entry.address] = provider_for(settings, entry, hooks, store.marks)
        except SettingsError as exc:
            if strict:
                raise
            by_address[entry.address] = UnavailableProvider(str(exc))
    return ProviderSet(SandboxProvider(store, hooks), by_address)
