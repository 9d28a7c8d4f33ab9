"""`mailgate serve|mcp|worker|setup`: the processes of the stack."""

from __future__ import annotations

import click

from server.cli.command import command
from server.settings import Settings


def _logging(settings: Settings) -> None:
    from server.logs import configure_logging

    configure_logging(settings)


@command(
    None,
    "serve",
    opens="settings",
    json=False,
    settings_options=("host", "port", "smtp_port", "temporal_port", "temporal_ui_enabled", "run_worker"),
)
@click.option("--host", help="Interface for HTTP and SMTP (default 127.0.0.1).")
@click.option("--port", type=int, help="HTTP port: dashboard, API, MCP (default 8025).")
@click.option("--smtp-port", type=int, help="Sandbox SMTP listener port, 0 to disable (default 2525).")
@click.option("--temporal-port", type=int, help="Embedded Temporal gRPC port (default 7233; UI on +1000).")
@click.option(
    "--temporal-ui",
    "temporal_ui_enabled",
    is_flag=True,
    default=None,
    help="Start the embedded Temporal UI (off by default; it shows every unencrypted draft).",
)
@click.option(
    "--no-worker",
    "run_worker",
    is_flag=True,
    flag_value=False,
    default=None,
    help="Front doors only (MCP, dashboard, API, webhooks) for a cluster whose workers run apart (`mailgate worker`).",
)
async def serve(settings: Settings) -> int:
    """Run everything: embedded Temporal, worker, dashboard, API, MCP over HTTP, sandbox SMTP.

    Ready when GET /healthz answers 200. Set MAILGATE_TEMPORAL_ADDRESS to use an
    existing Temporal cluster instead of the embedded dev server; with --no-worker only the
    front doors run (set MAILGATE_DATABASE_URL so that every process shares mailgate's state).
    """
    from server.stack import serve as serve_stack

    _logging(settings)
    return await serve_stack(settings)


@command(None, "mcp", opens="settings", json=False)
async def mcp(settings: Settings) -> int:
    """MCP over stdio (for Claude Desktop). Starts the stack unless one runs for the data dir."""
    from server.stack import mcp_stdio

    _logging(settings)
    return await mcp_stdio(settings)


@command(None, "worker", opens="settings", json=False)
async def worker(settings: Settings) -> int:
    """Run a worker alone, for scale-out against a Temporal cluster."""
    from server.workers import run_worker

    _logging(settings)
    return await run_worker(settings)


@command(None, "setup", opens="settings", json=False)
async def setup(settings: Settings) -> int:
    """Register mailgate's search attributes on the configured Temporal cluster (idempotent)."""
    from server.workers import register_search_attributes

    return await register_search_attributes(settings)
