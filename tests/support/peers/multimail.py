"""A MultiMail provider pointed at the local contract server, for provider tests."""

from __future__ import annotations

from datetime import timedelta

from tests.support.peers.multimail_fake import FakeServer
from workflows.providers.base import InboundHooks
from workflows.providers.multimail.account import MultiMailConfig
from workflows.providers.multimail.provider import MultiMailProvider

ADDRESS = "agent@mm.example"


def provider_for(
    server: FakeServer, mode: str = "autonomous", key: str = "mm_live_sender", hooks: InboundHooks | None = None
) -> MultiMailProvider:
    box = server.fake.add_mailbox(ADDRESS, mode)
    config = MultiMailConfig(address=ADDRESS, mailbox_id=box, base_url=server.url, decision_poll=timedelta(seconds=1))
    return MultiMailProvider(config, key, hooks=hooks)
