"""The co-located stack of `mailgate serve` and `mailgate mcp`: Temporal, worker, HTTP, SMTP."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import uvicorn
from google.protobuf.duration_pb2 import Duration
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import Client

from server.app import Mailgate
from server.connect import connect
from server.credentials import Secrets, load_secrets, secure_data_dir
from server.embedded import DevServer, start_dev_server, write_atomically
from server.mcp_server import build_mcp
from server.memory_trim import trim_after_bursts
from server.notifications import notify_config, slack_config
from server.running import StackInfo, attach, running_stack, stack_file
from server.search_attributes import ensure_search_attributes
from server.settings import MailboxEntry, Settings, SettingsError
from server.smtp_listener import start_smtp_listener
from server.stores import ledger
from server.telemetry import install_metrics_runtime
from server.ui_proxy import start_ui_proxy
from server.web.app import build_app
from server.web.ops import Check, worker_check
from server.worker_process import WorkerProcess
from workflows.providers.sandbox.provider import SandboxProvider
from workflows.read_models import IntakeConfig
from workflows.trust.proofs import proof_key

if TYPE_CHECKING:
    from temporalio.worker import Worker

log = logging.getLogger("mailgate")
RETENTION = timedelta(days=30)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


async def ensure_retention(client: Client, namespace: str) -> None:
    """The dev server keeps closed workflows one day; sends and their audit deserve a month."""
    described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
    if described.config.workflow_execution_retention_ttl.seconds >= RETENTION.total_seconds():
        return
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=namespace,
            config=NamespaceConfig(workflow_execution_retention_ttl=Duration(seconds=int(RETENTION.total_seconds()))),
        )
    )


def check_exposure(settings: Settings) -> None:
    if settings.host in LOOPBACK:
        return
    if settings.agent_token is None or settings.admin_token is None:
        raise SettingsError(
            f"binding to {settings.host} exposes mailgate beyond this machine: set MAILGATE_AGENT_TOKEN "
            "and MAILGATE_ADMIN_TOKEN explicitly (and MAILGATE_PUBLIC_URL) before doing so"
        )


def port_hint(flag: str | None, variable: str) -> str:
    how = f"pass {flag} or set {variable}" if flag else f"set {variable}"
    return f"{how} to use another port"


def bind_port(host: str, port: int, what: str, hint: str) -> socket.socket:
    """Bind (not yet listen on) a port before anything starts, so a clash ends the start at once
    with one line, instead of after Temporal and the worker are up (uvicorn would sys.exit)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on connections whose socket says TCP,
    # and accepted sockets inherit this one's protocol. Without it every answer over HTTP waited
    # ~40 ms (Nagle behind the client's delayed ACK) between its headers and its body.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise port_taken(host, port, what, hint, exc) from None
    return sock


def port_taken(host: str, port: int, what: str, hint: str, exc: OSError) -> SettingsError:
    why = "is taken by another program" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
    return SettingsError(f"{what} port {port} on {host} {why}; {hint}")


async def serve_http(server: uvicorn.Server, sock: socket.socket) -> None:
    """uvicorn calls sys.exit when it cannot start; a SystemExit in a task would leave this
    process hanging in asyncio's shutdown with its children alive, so make it an error."""
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        raise SettingsError(f"the HTTP app stopped at start (status {exc.code}); see the log above") from None


async def configure_watchers(app: Mailgate) -> None:
    """Give configured mailboxes' watchers their intake workflow and every watcher the poll interval."""
    entries = {e.address.lower(): e for e in app.settings.mailboxes}
    for box in await app.mailboxes.all():
        entry = entries.get(box.address.lower())
        intake = (
            IntakeConfig(workflow=entry.intake_workflow, task_queue=entry.intake_task_queue)
            if entry is not None and entry.intake_workflow
            else None
        )
        try:
            await app.inbox.configure_watcher(box.address, intake)
        except Exception as exc:
            # An IMAP server down at start-up must not keep the rest from starting. Its IDLE
            # loop or the next arrival starts the watcher later.
            log.warning("the watcher of %s is not configured now: %s", box.address, exc)


@dataclass
class Stack:
    settings: Settings
    secrets: Secrets
    app: Mailgate
    dev: DevServer | None
    # None: front doors alone (`serve --no-worker`), or a worker process of its own (server/worker_process.py)
    worker: Worker | None
    ready: bool = False
    metrics_address: str | None = None
    # Whether this stack's worker (in this process or its own) runs; None without one.
    worker_check: Check | None = None
    # The exporter of a worker in a process of its own, merged into /metrics.
    worker_metrics_address: str | None = None
    # Restarts that worker process when it dies; ends with SettingsError when it gives up.
    worker_watch: asyncio.Task[None] | None = None


@contextlib.asynccontextmanager
async def worker_for(
    settings: Settings,
    client: Client,
    app: Mailgate,
    secrets: Secrets,
    address: str,
    stopping: asyncio.Event | None = None,
) -> AsyncIterator[tuple[Worker | None, Check | None, str | None, asyncio.Task[None] | None]]:
    """The worker, in a process of its own (the default; with the task that restarts it) or in this
    one (MAILGATE_WORKER_PROCESS=false); none for front doors alone (`serve --no-worker`)."""
    if not settings.run_worker:
        yield None, None, None, None
        return
    if settings.worker_process:
        process = WorkerProcess(settings, client, address, stopping or asyncio.Event())
        try:
            await process.start()
            watch = asyncio.create_task(process.watch())
            try:
                yield None, process.ready, process.metrics, watch
            finally:
                watch.cancel()  # no restart while stopping
                with contextlib.suppress(asyncio.CancelledError, SettingsError):
                    await watch
        finally:
            await process.stop()
        return
    # Here only: a front door whose worker runs apart never loads the worker's code.
    from workflows.worker import build_worker

    worker = build_worker(
        client,
        settings.task_queue,
        app.providers,
        notify_config(settings, secrets),
        settings.workflow_cache,
        proof_key=proof_key(secrets.secret_key),
        slack=slack_config(settings),
        ledger=ledger(settings),
    )
    async with worker:
        yield worker, worker_check(worker), None, None


@contextlib.asynccontextmanager
async def start_core(settings: Settings, stopping: asyncio.Event | None = None) -> AsyncIterator[Stack]:
    """Temporal (embedded unless configured), the client, the worker and the default mailboxes;
    ``stopping`` set: serve is on its way out (a worker process that ends then is not restarted)."""
    secrets = load_secrets(settings)
    metrics_address = install_metrics_runtime(settings, "serve")
    dev = await asyncio.to_thread(start_dev_server, settings) if settings.embedded else None
    stack: Stack | None = None
    ui_proxy: asyncio.Server | None = None
    try:
        if dev is not None and settings.temporal_ui_enabled:

            def ui_port() -> int | None:
                # The port as a restarted dev server has it now (the supervisor replaces stack.dev).
                current = stack.dev if stack is not None else dev
                return current.ui_backend_port or None if current is not None else None

            try:
                ui_proxy = await start_ui_proxy(settings.embedded_ui_port, ui_port)
            except OSError as exc:
                raise SettingsError(
                    f"the Temporal UI cannot listen on 127.0.0.1:{settings.embedded_ui_port} ({exc.strerror}); "
                    "set MAILGATE_TEMPORAL_UI_PORT, or start without --temporal-ui"
                ) from exc
        client = await connect(settings, dev.address if dev else None, wait=30)
        if dev is not None:
            await ensure_retention(client, settings.temporal_namespace)
            # Before the worker and the front doors: a data dir from an older release may lack one.
            await ensure_search_attributes(client, settings.temporal_namespace, str(settings.data_dir / "temporal.log"))
        app = Mailgate.build(settings, client, secrets)
        adopted = await app.mailboxes.adopt_existing()
        if adopted:
            log.warning("recorded the configuration of %s as it stands in Temporal", ", ".join(adopted))
        address = dev.address if dev is not None else settings.temporal_address or ""
        async with worker_for(settings, client, app, secrets, address, stopping) as (
            worker,
            check,
            worker_metrics,
            worker_watch,
        ):
            await app.mailboxes.ensure(MailboxEntry(address=settings.default_mailbox), created_by="mailgate")
            for entry in settings.mailboxes:
                await app.mailboxes.ensure(entry, created_by="config")
            await configure_watchers(app)
            if worker is not None:  # IMAP IDLE and other background syncing belong to workers
                await app.providers.start()
            stack = Stack(
                settings,
                secrets,
                app,
                dev,
                worker,
                metrics_address=metrics_address,
                worker_check=check,
                worker_metrics_address=worker_metrics,
                worker_watch=worker_watch,
            )
            supervisor = asyncio.create_task(supervise(stack)) if dev is not None else None
            try:
                yield stack
            finally:
                if supervisor is not None:
                    supervisor.cancel()
        await app.providers.aclose()
    finally:
        if ui_proxy is not None:
            ui_proxy.close()
        current = stack.dev if stack is not None else dev
        if current is not None:
            await asyncio.to_thread(current.stop)


async def supervise(stack: Stack, interval: float = 1.0) -> None:
    """Restart the embedded dev server if it dies; the client and worker reconnect by themselves."""
    while True:
        await asyncio.sleep(interval)
        dev = stack.dev
        if dev is None or not dev.exited():
            continue
        log.warning("the Temporal dev server (pid %s) exited; restarting it on the same data", dev.pid)
        try:
            stack.dev = await asyncio.to_thread(start_dev_server, stack.settings)
        except SettingsError as exc:
            log.error("could not restart the Temporal dev server: %s", exc)


def temporal_ui(stack: Stack) -> str:
    dev = stack.dev
    if dev is None:
        return stack.settings.temporal_ui or "your cluster's UI"
    if dev.ui_backend_port and stack.settings.temporal_ui_enabled:
        return f"{dev.ui_url} (answers only a loopback Host; shows drafts unless encryption is on)"
    if stack.settings.temporal_ui_enabled:
        return "off: the running dev server was started without it (stop it, then start again)"
    return "off (mailgate serve --temporal-ui starts it)"


def banner(stack: Stack, stdio: bool) -> str:
    settings, secrets = stack.settings, stack.secrets
    url = settings.http_url
    lines = [
        f"mailgate is running (data dir {settings.data_dir})",
        f"  dashboard:    {url}/",
        f"  MCP:          {url}/mcp (streamable HTTP), {url}/sse (SSE)" + (", and stdio" if stdio else ""),
        f"  approver API: {url}/api/approvals",
        f"  Temporal:     {stack.dev.address if stack.dev else settings.temporal_address} (gRPC, loopback only)"
        if stack.dev
        else f"  Temporal:     {settings.temporal_address}",
        f"  Temporal UI:  {temporal_ui(stack)}",
    ]
    if settings.smtp_port:
        lines.append(f"  sandbox SMTP: {settings.host}:{settings.smtp_port}")
    lines.append(f"  send from:    {settings.default_mailbox} (the default mailbox: tools use it when none is named)")
    if settings.host not in LOOPBACK:
        # check_exposure let this start only because both tokens are set; say what that means.
        lines.append(
            f"  exposed:      listening on {settings.host}, reachable beyond this machine; "
            "MCP and the approver API answer only their bearer tokens"
        )
    shared = "in the shared database (MAILGATE_DATABASE_URL)"
    agent_from = shared if settings.database_url and not settings.agent_token else "from MAILGATE_AGENT_TOKEN"
    admin_from = shared if settings.database_url and not settings.admin_token else "from MAILGATE_ADMIN_TOKEN"
    lines.append(f"  agent token:  {secrets.agent_token_file or agent_from}")
    lines.append(f"  admin token:  {secrets.admin_token_file or admin_from}")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


async def serve(settings: Settings, *, stdio: bool = False) -> int:
    """Run the whole stack until Ctrl-C/SIGTERM (or, with stdio, until the MCP client leaves)."""
    check_exposure(settings)
    other = running_stack(settings.data_dir)
    if other is not None:
        raise SettingsError(
            f"mailgate already runs for data dir {settings.data_dir} (pid {other.pid}, {other.http_url}); "
            "stop it first, or use another --data-dir"
        )
    secure_data_dir(settings.data_dir)
    # Ports first: a clash must end the start before Temporal or anything else runs.
    http_socket = bind_port(
        settings.host, settings.port, "HTTP", port_hint(None if stdio else "--port", "MAILGATE_PORT")
    )
    with contextlib.ExitStack() as sockets:
        sockets.callback(http_socket.close)
        smtp_socket, smtp_hint = None, ""
        if settings.smtp_port:
            smtp_hint = (
                port_hint(None if stdio else "--smtp-port", "MAILGATE_SMTP_PORT") + " (0 turns the listener off)"
            )
            # Held until the listener takes it over: released here, the port stayed free for the
            # seconds Temporal and the worker take to start, and their own connections (or any
            # other program) could get it from the kernel meanwhile.
            smtp_socket = bind_port(settings.host, settings.smtp_port, "SMTP", smtp_hint)
            sockets.callback(smtp_socket.close)
        return await _serve(settings, stdio, http_socket, smtp_socket, smtp_hint)


async def _serve(
    settings: Settings,
    stdio: bool,
    http_socket: socket.socket,
    smtp_socket: socket.socket | None,
    smtp_hint: str,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with start_core(settings, stop) as stack:
        mcp = build_mcp(stack.app)
        web = build_app(
            stack.app,
            mcp,
            ready=lambda: stack.ready,
            worker=stack.worker_check,
            metrics_addresses=[a for a in (stack.metrics_address, stack.worker_metrics_address) if a],
        )
        server = uvicorn.Server(
            # proxy_headers off: a forwarded address from any local process would otherwise
            # become the client address that failed-token throttling keys on.
            uvicorn.Config(
                web,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                lifespan="on",
                proxy_headers=False,
                # A declared dependency, named so a broken install fails at start instead of
                # quietly costing more CPU per request on h11 (benchmarks/thin.py uses the same).
                http="httptools",
                # JSON logs: uvicorn's lines go through our handler instead of its own text one.
                log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
            )
        )
        sandbox = stack.app.providers.default
        assert isinstance(sandbox, SandboxProvider)
        smtp = None
        if smtp_socket is not None:
            try:
                smtp = await start_smtp_listener(sandbox, settings.host, settings.smtp_port, sock=smtp_socket)
            except OSError as exc:
                raise port_taken(settings.host, settings.smtp_port, "SMTP", smtp_hint, exc) from None
        http_task = asyncio.create_task(serve_http(server, http_socket))
        while not server.started and not http_task.done():
            await asyncio.sleep(0.02)
        if http_task.done():
            http_task.result()  # its own error, if it has one
            raise SettingsError(f"the HTTP app could not listen on {settings.host}:{settings.port}")
        write_atomically(
            stack_file(settings.data_dir),
            StackInfo(
                pid=os.getpid(),
                http_url=settings.http_url,
                temporal_address=stack.dev.address if stack.dev else settings.temporal_address or "",
                temporal_namespace=settings.temporal_namespace,
                task_queue=settings.task_queue,
                temporal_ui_url=settings.temporal_ui,
                smtp_port=settings.smtp_port or None,
            ).model_dump_json(),
        )
        stack.ready = True
        trimming = asyncio.create_task(trim_after_bursts())
        print(banner(stack, stdio), file=sys.stderr, flush=True)
        waiters = [asyncio.create_task(stop.wait()), http_task]
        if stdio:
            waiters.append(asyncio.create_task(mcp.run_stdio_async()))
        # The worker process's watch ends only when it gives up restarting that process.
        watch = [stack.worker_watch] if stack.worker_watch is not None else []
        await asyncio.wait([*waiters, *watch], return_when=asyncio.FIRST_COMPLETED)
        # Whichever ended first (a signal, the HTTP server, or the stdio client closing stdin),
        # release the stop waiter too, or the wait below would sit out its whole timeout.
        stop.set()
        print("mailgate: stopping", file=sys.stderr, flush=True)
        trimming.cancel()
        stack.ready = False
        with contextlib.suppress(OSError):
            stack_file(settings.data_dir).unlink()
        server.should_exit = True
        if smtp is not None:
            smtp.close()
        await asyncio.wait(waiters, timeout=10)
        for task in waiters:
            task.cancel()
        gave_up = next((task.exception() for task in watch if task.done() and not task.cancelled()), None)
        if gave_up is not None:
            raise gave_up
    return 0


async def mcp_stdio(settings: Settings) -> int:
    """`mailgate mcp`: MCP over stdio, relayed to MAILGATE_URL if set, else on the data dir's
    running stack, else on a stack of its own that ends with the session."""
    if settings.url:
        from server.remote import relay_stdio

        return await relay_stdio(settings)
    running = running_stack(settings.data_dir)
    if running is None:
        return await serve(settings, stdio=True)
    print(
        f"mailgate: using the mailgate that runs for data dir {settings.data_dir} (pid {running.pid}, "
        f"{running.http_url}); nothing else starts",
        file=sys.stderr,
        flush=True,
    )
    settings = attach(settings)
    client = await connect(settings, wait=10)
    app = Mailgate.build(settings, client, load_secrets(settings), strict=False)
    await build_mcp(app).run_stdio_async()
    return 0
