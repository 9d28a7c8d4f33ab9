"""The providers of a running mailgate, wired to Temporal for inbound mail (holds and pokes)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client

from server.settings import Settings
from workflows.inbound import TemporalInbound
from workflows.providers.base import ProviderSet
from workflows.providers.sandbox import SandboxProvider, SandboxStore


def build_providers(settings: Settings, client: Client, store: SandboxStore) -> ProviderSet:
    hooks = TemporalInbound(client, settings.task_queue, timedelta(seconds=settings.inbound_poll_seconds))
    return ProviderSet(SandboxProvider(store, hooks))
