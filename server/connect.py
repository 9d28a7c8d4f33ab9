"""Connecting to Temporal: the embedded dev server of a data dir, or a configured cluster."""

from __future__ import annotations

import asyncio
import time

from temporalio.client import Client
from temporalio.service import TLSConfig

from server.embedded import running_dev_server
from server.errors import Unavailable
from server.settings import Settings
from workflows.temporal import data_converter


def temporal_address(settings: Settings) -> str:
    if settings.temporal_address:
        return settings.temporal_address
    server = running_dev_server(settings.data_dir)
    if server is None:
        raise Unavailable(
            f"no mailgate stack is running for data dir {settings.data_dir}; "
            "start one with `mailgate serve` (or pass --data-dir / set MAILGATE_DATA_DIR)"
        )
    return server.address


def _tls(settings: Settings) -> TLSConfig | bool:
    files = (settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_ca)
    if not settings.temporal_tls and not any(files):
        # Temporal Cloud with an API key always speaks TLS.
        return settings.temporal_api_key is not None
    return TLSConfig(
        client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
        client_private_key=settings.temporal_tls_key.read_bytes() if settings.temporal_tls_key else None,
        server_root_ca_cert=settings.temporal_tls_ca.read_bytes() if settings.temporal_tls_ca else None,
        domain=settings.temporal_tls_server_name,
    )


async def connect(settings: Settings, address: str | None = None, wait: float = 0.0) -> Client:
    """A client for the data dir's stack; ``wait`` seconds of retries for a server still starting."""
    target = address or temporal_address(settings)
    deadline = time.monotonic() + wait
    while True:
        try:
            return await Client.connect(
                target,
                namespace=settings.temporal_namespace,
                tls=_tls(settings),
                api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
                data_converter=data_converter(settings.codec()),
            )
        except RuntimeError as exc:
            if time.monotonic() >= deadline:
                raise Unavailable(f"cannot reach Temporal at {target}: {exc}") from exc
            await asyncio.sleep(0.2)
