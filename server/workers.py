"""`mailgate worker` and `mailgate setup`: the scale-out pieces for a real Temporal cluster."""

from __future__ import annotations

import asyncio
import signal
import sys

from temporalio.service import RPCError

from server.connect import connect
from server.credentials import load_secrets
from server.errors import Unavailable
from server.memory_trim import trim_after_bursts
from server.notifications import notice_marks, notify_config, slack_config
from server.providers import build_providers
from server.search_attributes import add_search_attributes
from server.settings import Settings
from server.stores import ledger, sandbox_database
from server.telemetry import install_metrics_runtime
from workflows.providers.sandbox.store import SandboxStore
from workflows.temporal import SEARCH_ATTRIBUTES
from workflows.trust.proofs import proof_key
from workflows.worker import GRACEFUL_SHUTDOWN, build_worker


async def run_worker(settings: Settings) -> int:
    if settings.metrics_address:
        # A worker has no HTTP app: the SDK's exporter is its /metrics.
        install_metrics_runtime(settings, "worker")
    client = await connect(settings, wait=10)
    # The secret key signs the links in notice emails, marks the notices and checks the front doors'
    # proofs: workers and front doors of one deployment must share it (MAILGATE_SECRET_KEY, or the
    # same data dir).
    secrets = load_secrets(settings)
    store = SandboxStore(sandbox_database(settings), notice_marks(secrets))
    providers = build_providers(settings, client, store)
    worker = build_worker(
        client,
        settings.task_queue,
        providers,
        notify_config(settings, secrets),
        settings.workflow_cache,
        proof_key=proof_key(secrets.secret_key),
        slack=slack_config(settings),
        ledger=ledger(settings),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        await providers.start()
        trimming = asyncio.create_task(trim_after_bursts())
        print(f"mailgate worker polling task queue {settings.task_queue!r}; Ctrl-C to stop", file=sys.stderr)
        await stop.wait()
        trimming.cancel()
        # Leaving `async with` stops polling; deliveries in flight get the graceful timeout to finish.
        wait = GRACEFUL_SHUTDOWN.total_seconds()
        print(f"mailgate worker: stopping; deliveries in flight may take up to {wait:g} s to finish", file=sys.stderr)
    await providers.aclose()
    return 0


def register_yourself(namespace: str, why: str) -> str:
    """The exact commands for a cluster that will not let mailgate register its attributes."""
    cloud = " ".join(f'--search-attribute "{n}={k}"' for n, k in SEARCH_ATTRIBUTES.items())
    self_hosted = " ".join(f"--name {n} --type {k}" for n, k in SEARCH_ATTRIBUTES.items())
    return (
        f"this cluster refused to register search attributes ({why}). Register them yourself: "
        f"Temporal Cloud: tcld namespace search-attributes add --namespace {namespace} {cloud}; "
        f"self-hosted: temporal operator search-attribute create --namespace {namespace} {self_hosted}"
    )


async def register_search_attributes(settings: Settings) -> int:
    client = await connect(settings, wait=5)
    namespace = settings.temporal_namespace
    try:
        added = await add_search_attributes(client, namespace)
    except RPCError as err:
        raise Unavailable(register_yourself(namespace, err.message)) from err
    if added:
        print(f"registered in namespace {namespace}: {', '.join(added)}")
    else:
        print(f"search attributes already registered in namespace {namespace}: {', '.join(SEARCH_ATTRIBUTES)}")
    return 0
