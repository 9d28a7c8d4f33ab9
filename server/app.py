"""The application object every front door shares: settings, the Temporal client and the services."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client

from server.credentials import Secrets
from server.drafts import Drafts
from server.identities import IdentityStore
from server.inbox import Inbox
from server.mailboxes import Mailboxes
from server.manage import Manager
from server.notifications import notice_marks
from server.providers import build_providers
from server.reply_waits import ReplyWaits
from server.sends import Sends
from server.settings import Settings
from server.sqlite_identities import open_identities
from server.stores import database_url, ledger, sandbox_database
from server.trash_approvals import TrashApprovals
from server.views import Review
from workflows.providers.base import ProviderSet
from workflows.providers.sandbox.store import SandboxStore
from workflows.trust.proofs import proof_key


@dataclass
class Mailgate:
    settings: Settings
    client: Client
    secrets: Secrets
    mailboxes: Mailboxes
    sends: Sends
    sandbox: SandboxStore
    providers: ProviderSet
    inbox: Inbox
    reply_waits: ReplyWaits
    identities: IdentityStore
    manager: Manager
    drafts: Drafts
    trash: TrashApprovals

    @classmethod
    def build(cls, settings: Settings, client: Client, secrets: Secrets, *, strict: bool = True) -> Mailgate:
        """``strict``: a configured mailbox whose secret is missing is an error now (not at first use)."""
        mailboxes = Mailboxes(client, settings, secrets.secret_key, ledger=ledger(settings))
        sends = Sends(client, settings, mailboxes, proof_key(secrets.secret_key))
        sandbox = SandboxStore(sandbox_database(settings), notice_marks(secrets))
        providers = build_providers(settings, client, sandbox, strict=strict)
        inbox = Inbox(client, settings, providers, mailboxes, sends)
        trash = TrashApprovals(client, settings, mailboxes, proof_key(secrets.secret_key))
        return cls(
            settings=settings,
            client=client,
            secrets=secrets,
            mailboxes=mailboxes,
            sends=sends,
            sandbox=sandbox,
            providers=providers,
            inbox=inbox,
            reply_waits=ReplyWaits(client, settings, providers, sends),
            identities=open_identities(settings.data_dir, database_url(settings)),
            manager=Manager(settings, providers, mailboxes, trash),
            drafts=Drafts(providers, mailboxes, inbox),
            trash=trash,
        )

    def default_mailbox(self, mailbox: str | None) -> str:
        """The mailbox a tool acts on: the one named, or the server's default when none is."""
        return mailbox.strip() if mailbox and mailbox.strip() else self.settings.default_mailbox

    async def ack_review(self, send_id: str, actor: str) -> Review:
        """A reviewer has looked at a monitored send that already went out."""
        state = await self.sends.status(send_id)
        item = await self.mailboxes.ack_review(state.mailbox, send_id, actor=actor)
        return Review(mailbox=state.mailbox, **item.model_dump())
