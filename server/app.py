"""The application object every front door shares: settings, the Temporal client and the services."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client

from server.credentials import Secrets
from server.mailboxes import Mailboxes
from server.sends import Sends
from server.settings import Settings
from workflows.providers.sandbox import SandboxStore


@dataclass
class Mailgate:
    settings: Settings
    client: Client
    secrets: Secrets
    mailboxes: Mailboxes
    sends: Sends
    sandbox: SandboxStore

    @classmethod
    def build(cls, settings: Settings, client: Client, secrets: Secrets) -> Mailgate:
        mailboxes = Mailboxes(client, settings)
        return cls(
            settings=settings,
            client=client,
            secrets=secrets,
            mailboxes=mailboxes,
            sends=Sends(client, settings, mailboxes),
            sandbox=SandboxStore(settings.data_dir / "sandbox.db"),
        )
