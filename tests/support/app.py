"""Settings and tokens for an app under test, on the session's Temporal server."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from server.settings import Settings
from tests.support.ports import free_port
from workflows.models import DeliveryReceipt, DeliveryRequest
from workflows.providers.base import ProviderSet

AGENT_TOKEN = "agent-token-for-tests-0123456789"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"


def unique_mailbox(prefix: str = "agent") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@mailgate.local"


def make_settings(env: WorkflowEnvironment, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        # A port of its own from the start, so links in notices point where the app will listen.
        "port": free_port(),
        "task_queue": f"tq-{uuid.uuid4().hex}",
        "temporal_address": env.client.service_client.config.target_host,
        "default_mailbox": unique_mailbox(),
        "agent_token": SecretStr(AGENT_TOKEN),
        "admin_token": SecretStr(ADMIN_TOKEN),
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `mailgate worker` or CLI subprocess on ``settings``' Temporal server,
    task queue, data dir and tokens (none of this process's own MAILGATE_ variables), plus ``extra``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")},
        "MAILGATE_DATA_DIR": str(settings.data_dir),
        "MAILGATE_TEMPORAL_ADDRESS": settings.temporal_address or "",
        "MAILGATE_TASK_QUEUE": settings.task_queue,
        "MAILGATE_AGENT_TOKEN": AGENT_TOKEN,
        "MAILGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        **extra,
    }


def record_sends(providers: ProviderSet, outbox: list[DeliveryRequest]) -> None:
    """Keep every request the default provider sends: mail to addresses outside the sandbox is
    otherwise not readable (the sandbox stores only local copies)."""
    provider = providers.default
    send = provider.send

    async def recording(request: DeliveryRequest) -> DeliveryReceipt:
        outbox.append(request)
        return await send(request)

    provider.send = recording  # type: ignore[method-assign]
