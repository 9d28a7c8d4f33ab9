"""The `mailgate` command line: the stack, and the human side of every decision."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
import traceback
import uuid
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, cast, get_args

import click
from click.core import ParameterSource
from pydantic import BaseModel
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from server.app import Mailgate
from server.cli_people import decidable, person_decision
from server.connect import connect
from server.credentials import load_secrets
from server.errors import MailgateError
from server.running import attach
from server.settings import Settings, SettingsError, load_settings
from workflows.mail.visibility import draft_warnings, show_invisible
from workflows.models import Decision, EmailAddress, OversightMode, SendStatus
from workflows.providers.sandbox.store import SandboxStore

P = ParamSpec("P")
MODES = list(get_args(OversightMode))
STATUSES = ["pending", "all", *get_args(SendStatus)]


def finish(status: int) -> NoReturn:
    """Flush and leave without interpreter finalization.

    temporalio's Rust threads can crash a finalizing interpreter (SIGSEGV/SIGABRT in about
    one run of eight here), which would make exit codes lie.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> NoReturn:
    try:
        status = asyncio.run(main())
    except MailgateError as exc:
        click.echo(f"mailgate: {exc.at('cli')}", err=True)
        status = 1
    except SettingsError as exc:
        click.echo(f"mailgate: {exc}", err=True)
        status = 1
    except KeyboardInterrupt:
        status = 130
    except Exception:  # a bug must still leave through finish(), with its traceback
        traceback.print_exc()
        status = 1
    finish(status)


DATA_DIR_HELP = "Where mailgate keeps its state (env MAILGATE_DATA_DIR; default: your user data folder)."
DATA_DIR_GIVEN = "mailgate.data_dir"


def _given_data_dir(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """--data-dir works before the subcommand as well as after it: a value given on the command
    line anywhere wins over MAILGATE_DATA_DIR, and the one nearest the command wins overall."""
    if value is not None and ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE:
        ctx.meta[DATA_DIR_GIVEN] = value
        return value
    return cast(Path | None, ctx.meta.get(DATA_DIR_GIVEN, value))


def data_dir_option(fn: Callable[P, Any]) -> Callable[P, Any]:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="MAILGATE_DATA_DIR",
        callback=_given_data_dir,
        help=DATA_DIR_HELP,
    )(fn)


def group_data_dir_option(fn: Callable[P, Any]) -> Callable[P, Any]:
    """The same option on a group (`mailgate --data-dir X approvals list`), for its subcommands."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        callback=_given_data_dir,
        expose_value=False,
        is_eager=True,
        help=DATA_DIR_HELP,
    )(fn)


def json_option(fn: Callable[P, Any]) -> Callable[P, Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(fn)


def settings_from(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        click.echo(f"mailgate: {exc}", err=True)
        finish(2)


def emit(value: BaseModel | Sequence[BaseModel] | dict[str, Any], as_json: bool, table: Callable[[], str]) -> None:
    if as_json:
        if isinstance(value, BaseModel):
            click.echo(value.model_dump_json(indent=2))
        elif isinstance(value, dict):
            click.echo(json.dumps(value, indent=2, default=str))
        else:
            click.echo(json.dumps([v.model_dump(mode="json") for v in value], indent=2))
    else:
        click.echo(table())


def columns(rows: list[list[str]], headers: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


async def open_app(settings: Settings) -> Mailgate:
    settings = attach(settings)
    client = await connect(settings)
    return Mailgate.build(settings, client, load_secrets(settings), strict=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="mailgate")
@group_data_dir_option
def main() -> None:
    """mailgate: durable email for AI agents, with graduated human oversight.

    Start everything with `mailgate serve`; decide on pending emails with
    `mailgate approvals`. Every command finds the running stack from --data-dir.
    """
    # Everything mailgate and its children (the Temporal dev server, SQLite's WAL and SHM
    # files) create holds drafts or secrets: readable by this user only.
    os.umask(0o077)


# --- the stack ---------------------------------------------------------------------------


def _logging(settings: Settings) -> None:
    from server.logs import configure_logging

    configure_logging(settings)


@main.command()
@click.option("--host", help="Interface for HTTP and SMTP (default 127.0.0.1).")
@click.option("--port", type=int, help="HTTP port: dashboard, API, MCP (default 8025).")
@click.option("--smtp-port", type=int, help="Sandbox SMTP listener port, 0 to disable (default 2525).")
@click.option("--temporal-port", type=int, help="Embedded Temporal gRPC port (default 7233; UI on +1000).")
@click.option(
    "--temporal-ui",
    is_flag=True,
    default=None,
    help="Start the embedded Temporal UI (off by default; it shows every unencrypted draft).",
)
@data_dir_option
def serve(
    host: str | None,
    port: int | None,
    smtp_port: int | None,
    temporal_port: int | None,
    temporal_ui: bool | None,
    data_dir: Path | None,
) -> NoReturn:
    """Run everything: embedded Temporal, worker, dashboard, API, MCP over HTTP, sandbox SMTP.

    Ready when GET /healthz answers 200. Set MAILGATE_TEMPORAL_ADDRESS to use an
    existing Temporal cluster instead of the embedded dev server.
    """
    from server.stack import serve as serve_stack

    settings = settings_from(
        host=host,
        port=port,
        smtp_port=smtp_port,
        temporal_port=temporal_port,
        temporal_ui_enabled=temporal_ui,
        data_dir=data_dir,
    )
    _logging(settings)
    run(lambda: serve_stack(settings))


@main.command()
@data_dir_option
def mcp(data_dir: Path | None) -> NoReturn:
    """MCP over stdio (for Claude Desktop). Starts the stack unless one runs for the data dir."""
    from server.stack import mcp_stdio

    settings = settings_from(data_dir=data_dir)
    _logging(settings)
    run(lambda: mcp_stdio(settings))


@main.command()
@data_dir_option
def worker(data_dir: Path | None) -> NoReturn:
    """Run a worker alone, for scale-out against a Temporal cluster."""
    from server.workers import run_worker

    settings = settings_from(data_dir=data_dir)
    _logging(settings)
    run(lambda: run_worker(settings))


@main.command()
@data_dir_option
def setup(data_dir: Path | None) -> NoReturn:
    """Register mailgate's search attributes on the configured Temporal cluster (idempotent)."""
    from server.workers import register_search_attributes

    settings = settings_from(data_dir=data_dir)
    run(lambda: register_search_attributes(settings))


# --- approvals ---------------------------------------------------------------------------


@main.group()
@group_data_dir_option
def approvals() -> None:
    """List pending emails and approve or reject them."""


@approvals.command("list")
@click.option("--mailbox", help="Only this mailbox.")
@click.option("--status", type=click.Choice(STATUSES), default="pending", show_default=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@data_dir_option
@json_option
def approvals_list(mailbox: str | None, status: str, limit: int, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Sends waiting for a decision (newest first)."""
    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        app = await open_app(settings)
        wanted = None if status == "all" else "pending_approval" if status == "pending" else status
        page = await app.sends.search(mailbox=mailbox, status=wanted, limit=limit)  # type: ignore[arg-type]
        sends = await decidable(app, page.sends)
        rows = [
            [
                s.send_id,
                s.status,
                s.mailbox,
                ", ".join(s.to),
                s.subject[:50],
                s.requested_at.strftime("%Y-%m-%d %H:%M") if s.requested_at else "",
            ]
            for s in sends
        ]
        emit(
            sends,
            as_json,
            lambda: columns(rows, ["SEND_ID", "STATUS", "MAILBOX", "TO", "SUBJECT", "REQUESTED"]),
        )
        return 0

    run(main)


async def _has_worker(app: Mailgate) -> bool:
    response = await app.client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=app.settings.temporal_namespace,
            task_queue=TaskQueue(name=app.settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return bool(response.pollers)


def _decide(settings: Settings, send_id: str, decision: Decision, as_json: bool) -> NoReturn:
    named = click.get_current_context().get_parameter_source("approver") == ParameterSource.COMMANDLINE

    async def main() -> int:
        nonlocal decision
        app = await open_app(settings)
        if os.environ.get("MAILGATE_API_TOKEN"):
            decision = await person_decision(app, send_id, decision, named)
        if not await _has_worker(app):
            await app.sends.signal_decision(send_id, decision.model_copy(update={"decision_id": uuid.uuid4().hex}))
            click.echo(f"{send_id}: decision recorded; it takes effect when a mailgate worker runs", err=True)
            return 0
        state = await app.sends.decide(send_id, decision)
        verb = "approved" if decision.decision == "approve" else "rejected"
        emit(state, as_json, lambda: f"{send_id}: {verb} by {decision.approver}; status {state.status}")
        return 0

    run(main)


@approvals.command("approve")
@click.argument("send_id")
@click.option("--as", "approver", default=getpass.getuser, show_default="your login name", help="Who decides.")
@click.option("--reason", help="Why (kept in the audit log).")
@click.option("--subject", help="Approve with this subject instead.")
@click.option("--body", help="Approve with this body instead.")
@click.option("--body-file", type=click.File("r"), help="Approve with the body read from this file.")
@click.option("--to", "to", multiple=True, help="Approve with these To recipients instead (repeatable).")
@click.option("--cc", "cc", multiple=True, help="Approve with these Cc recipients instead (repeatable).")
@click.option("--bcc", "bcc", multiple=True, help="Approve with these Bcc recipients instead (repeatable).")
@data_dir_option
@json_option
def approvals_approve(
    send_id: str,
    approver: str,
    reason: str | None,
    subject: str | None,
    body: str | None,
    body_file: Any,
    to: tuple[str, ...],
    cc: tuple[str, ...],
    bcc: tuple[str, ...],
    data_dir: Path | None,
    as_json: bool,
) -> NoReturn:
    """Approve a pending send, optionally with edits; the edited version is what goes out."""
    from server.sends import check_person, parse_edits

    settings = settings_from(data_dir=data_dir)
    try:
        edits = parse_edits(
            subject=subject,
            body=body_file.read() if body_file else body,
            to=list(to) or None,
            cc=list(cc) or None,
            bcc=list(bcc) or None,
        )
        decision = Decision(
            decision="approve", approver=check_person(approver), reason=reason, edits=edits, channel="cli"
        )
    except MailgateError as exc:
        click.echo(f"mailgate: {exc.at('cli')}", err=True)
        finish(1)
    _decide(settings, send_id, decision, as_json)


@approvals.command("reject")
@click.argument("send_id")
@click.option("--as", "approver", default=getpass.getuser, show_default="your login name", help="Who decides.")
@click.option("--reason", required=True, help="Why; the agent sees it.")
@data_dir_option
@json_option
def approvals_reject(send_id: str, approver: str, reason: str, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Reject a pending send with a reason."""
    from server.sends import check_person

    settings = settings_from(data_dir=data_dir)
    try:
        decision = Decision(decision="reject", approver=check_person(approver), reason=reason, channel="cli")
    except MailgateError as exc:
        click.echo(f"mailgate: {exc.at('cli')}", err=True)
        finish(1)
    _decide(settings, send_id, decision, as_json)


# --- sends -------------------------------------------------------------------------------


@main.group()
@group_data_dir_option
def sends() -> None:
    """Look at sends."""


@sends.command("show")
@click.argument("send_id")
@data_dir_option
@json_option
def sends_show(send_id: str, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Everything about one send: status, draft, decision, edits, audit events."""
    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        app = await open_app(settings)
        state = await app.sends.status(send_id)

        def table() -> str:
            # Invisible characters and escape sequences as <U+XXXX>: a terminal must not hide text.
            draft = state.approved or state.original

            def people(items: tuple[EmailAddress, ...]) -> str:
                return show_invisible(", ".join(str(a) for a in items)) or "(none)"

            lines = [f"LOOK CLOSELY: {w}" for w in draft_warnings(draft, state.from_name)]
            lines += [
                f"send:      {state.send_id} ({state.status})",
                f"mailbox:   {state.mailbox} ({state.oversight_mode})",
                f"requested: {state.requested_at:%Y-%m-%d %H:%M:%S} by {state.requester}",
                f"to:        {people(draft.to)}",
            ]
            if draft.cc:
                lines.append(f"cc:        {people(draft.cc)}")
            lines.append(f"bcc:       {people(draft.bcc)}")
            lines += [f"subject:   {show_invisible(draft.subject)}", f"message:   {state.message_id}"]
            if state.expires_at:
                lines.append(f"expires:   {state.expires_at:%Y-%m-%d %H:%M:%S}")
            if state.reason:
                lines.append(f"reason:    {state.reason}")
            if state.last_error:
                lines.append(f"error:     {state.last_error}")
            body = draft.body.replace("\r\n", "\n").replace("\r", "\n")  # a lone CR goes out as a line break
            lines += ["", show_invisible(body), "", "history:"]
            lines += [f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.kind:<16} {e.actor}  {e.detail}" for e in state.events]
            return "\n".join(lines)

        emit(state, as_json, table)
        return 0

    run(main)


# --- mailboxes ---------------------------------------------------------------------------


@main.group()
@group_data_dir_option
def mailbox() -> None:
    """List, create and set the oversight mode of mailboxes."""


@mailbox.command("list")
@data_dir_option
@json_option
def mailbox_list(data_dir: Path | None, as_json: bool) -> NoReturn:
    """All mailboxes with their oversight mode."""
    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        app = await open_app(settings)
        boxes = await app.mailboxes.all()
        rows = [[b.address, b.oversight_mode, b.provider, b.display_name] for b in boxes]
        emit(boxes, as_json, lambda: columns(rows, ["ADDRESS", "MODE", "PROVIDER", "NAME"]))
        return 0

    run(main)


@mailbox.command("create")
@click.argument("address")
@click.option("--mode", type=click.Choice(MODES), help="Oversight mode (default: the server default).")
@click.option("--display-name", default="", help="Name shown in From.")
@data_dir_option
@json_option
def mailbox_create(address: str, mode: str | None, display_name: str, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Create a sandbox mailbox."""
    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        app = await open_app(settings)
        config = await app.mailboxes.create(
            address,
            created_by=getpass.getuser(),
            mode=cast(OversightMode | None, mode),
            display_name=display_name,
        )
        emit(config, as_json, lambda: f"created {config.address} ({config.mode})")
        return 0

    run(main)


@mailbox.command("set-mode")
@click.argument("address")
@click.argument("mode", type=click.Choice(MODES))
@click.option("--as", "actor", default=getpass.getuser, show_default="your login name", help="Who changes it.")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@data_dir_option
@json_option
def mailbox_set_mode(
    address: str, mode: str, actor: str, reason: str, data_dir: Path | None, as_json: bool
) -> NoReturn:
    """Set a mailbox's oversight mode (humans may loosen as well as tighten)."""
    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        app = await open_app(settings)
        config = await app.mailboxes.set_mode(address, mode, actor=actor, role="human", reason=reason)  # type: ignore[arg-type]
        emit(config, as_json, lambda: f"{config.address} is now {config.mode}")
        return 0

    run(main)


@mailbox.command("configure")
@click.argument("address")
@click.option("--display-name", help="Name shown in From.")
@click.option("--approver", "approvers", multiple=True, help="Who may decide (repeatable; replaces the list).")
@click.option("--reviewer", "reviewers", multiple=True, help="Who reviews monitored sends (repeatable).")
@click.option("--allow", multiple=True, help="Allowed recipient: address, domain or *.domain (repeatable).")
@click.option("--deny", multiple=True, help="Denied recipient: address, domain or *.domain (repeatable).")
@click.option(
    "--clear",
    "clear",
    multiple=True,
    type=click.Choice(["approvers", "reviewers", "allow", "deny"]),
    help="Empty this list.",
)
@click.option("--rate-per-hour", type=click.IntRange(0), help="Sends per hour (0 removes the limit).")
@click.option("--rate-per-day", type=click.IntRange(0), help="Sends per day (0 removes the limit).")
@click.option("--approval-window-hours", type=click.FloatRange(0, min_open=True), help="Default approval window.")
@click.option("--as", "actor", default=getpass.getuser, show_default="your login name", help="Who changes it.")
@data_dir_option
@json_option
def mailbox_configure(
    address: str,
    display_name: str | None,
    approvers: tuple[str, ...],
    reviewers: tuple[str, ...],
    allow: tuple[str, ...],
    deny: tuple[str, ...],
    clear: tuple[str, ...],
    rate_per_hour: int | None,
    rate_per_day: int | None,
    approval_window_hours: float | None,
    actor: str,
    data_dir: Path | None,
    as_json: bool,
) -> NoReturn:
    """Set a mailbox's policies: approvers, reviewers, allow/deny lists, rate limits, approval window."""
    from server.mailboxes import PolicyChanges

    settings = settings_from(data_dir=data_dir)
    lists = {"approvers": approvers, "reviewers": reviewers, "allow": allow, "deny": deny}
    changes = PolicyChanges(
        display_name=display_name,
        rate_per_hour=rate_per_hour,
        rate_per_day=rate_per_day,
        approval_window_hours=approval_window_hours,
        **{name: [] if name in clear else list(values) if values else None for name, values in lists.items()},
    )

    async def main() -> int:
        app = await open_app(settings)
        config = await app.mailboxes.configure(address, changes, actor=actor)

        def table() -> str:
            return "\n".join(f"{key}: {value}" for key, value in config.model_dump().items())

        emit(config, as_json, table)
        return 0

    run(main)


@mailbox.command("audit")
@click.argument("address", required=False)
@click.option("--send", "send_id", help="Only this send.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@data_dir_option
@json_option
def mailbox_audit(
    address: str | None, send_id: str | None, limit: int, data_dir: Path | None, as_json: bool
) -> NoReturn:
    """What happened, newest first: sends, decisions, edits, mode changes, upgrade requests."""
    from server.audit import audit_log

    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        app = await open_app(settings)
        page = await audit_log(app.mailboxes, app.sends, mailbox=address, send_id=send_id, limit=limit)
        rows = [
            [e.at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, e.actor, e.send_id or e.mailbox or "", e.detail[:60]]
            for e in page.events
        ]
        emit(page.events, as_json, lambda: columns(rows, ["AT", "EVENT", "WHO", "SEND/MAILBOX", "DETAIL"]))
        return 0

    run(main)


# --- reviews and upgrades ------------------------------------------------------------------


@main.group()
@group_data_dir_option
def reviews() -> None:
    """Sends from monitored mailboxes that went out and wait for a human to look at them."""


@reviews.command("list")
@click.option("--mailbox", help="Only this mailbox.")
@click.option("--all", "include_acked", is_flag=True, help="Include reviews already acknowledged.")
@data_dir_option
@json_option
def reviews_list(mailbox: str | None, include_acked: bool, data_dir: Path | None, as_json: bool) -> NoReturn:
    """The review list, oldest first."""
    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        app = await open_app(settings)
        found = await app.mailboxes.reviews(mailbox, include_acked=include_acked)
        rows = [[r.send_id, r.mailbox, r.at.strftime("%Y-%m-%d %H:%M"), r.acked_by or "-"] for r in found]
        emit(found, as_json, lambda: columns(rows, ["SEND_ID", "MAILBOX", "SENT", "REVIEWED_BY"]))
        return 0

    run(main)


@reviews.command("ack")
@click.argument("send_id")
@click.option("--as", "actor", default=getpass.getuser, show_default="your login name", help="Who reviewed it.")
@data_dir_option
@json_option
def reviews_ack(send_id: str, actor: str, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Mark a monitored send as reviewed."""
    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        app = await open_app(settings)
        review = await app.ack_review(send_id, actor)
        emit(review, as_json, lambda: f"{send_id}: reviewed by {review.acked_by}")
        return 0

    run(main)


@main.group()
@group_data_dir_option
def upgrades() -> None:
    """Requests from agents to loosen a mailbox, with the one-time codes to give them."""


@upgrades.command("list")
@click.option("--mailbox", help="Only this mailbox.")
@data_dir_option
@json_option
def upgrades_list(mailbox: str | None, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Upgrade requests, newest first. Give the code to the agent only if you agree."""
    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        app = await open_app(settings)
        found = await app.mailboxes.upgrades(mailbox)
        rows = [
            [
                u.mailbox,
                u.request.mode,
                u.request.status,
                u.code if u.request.status == "pending" else "-",
                u.request.expires_at.strftime("%Y-%m-%d %H:%M"),
                u.request.reason[:50],
            ]
            for u in found
        ]
        emit(found, as_json, lambda: columns(rows, ["MAILBOX", "MODE", "STATUS", "CODE", "EXPIRES", "REASON"]))
        return 0

    run(main)


# --- inbound mail held by gated_all -------------------------------------------------------


@main.group()
@group_data_dir_option
def inbound() -> None:
    """Inbound mail held for a human in gated_all mailboxes: list, release, discard."""


@inbound.command("list")
@click.option("--mailbox", help="Only this mailbox.")
@data_dir_option
@json_option
def inbound_list(mailbox: str | None, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Held emails, oldest first. Agents see none of them until you release one."""
    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        app = await open_app(settings)
        held = await app.inbox.held(mailbox)
        rows = [
            [
                e.email_id,
                e.mailbox,
                e.received_at.strftime("%Y-%m-%d %H:%M"),
                str(e.sender or ""),
                e.subject[:50],
                ("[attachments] " if e.has_attachments else "") + e.snippet[:60],
            ]
            for e in held
        ]
        emit(held, as_json, lambda: columns(rows, ["EMAIL_ID", "MAILBOX", "RECEIVED", "FROM", "SUBJECT", "SNIPPET"]))
        return 0

    run(main)


def _decide_held(
    email_id: str, change: str, actor: str, mailbox: str | None, data_dir: Path | None, as_json: bool
) -> NoReturn:
    from server.sends import check_person

    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        app = await open_app(settings)
        email = await app.inbox.decide_held(email_id, change, check_person(actor, "--as"), mailbox)  # type: ignore[arg-type]
        verb = "released: agents can read it now" if change == "release" else "discarded: agents never see it"
        emit(email, as_json, lambda: f"{email.email_id} in {email.mailbox} {verb}")
        return 0

    run(main)


@inbound.command("release")
@click.argument("email_id")
@click.option("--mailbox", help="The mailbox (needed only if the id is held in several).")
@click.option("--as", "actor", default=getpass.getuser, show_default="your login name", help="Who releases it.")
@data_dir_option
@json_option
def inbound_release(email_id: str, mailbox: str | None, actor: str, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Let agents see a held email (it then appears in check_inbox and wakes reply waits)."""
    _decide_held(email_id, "release", actor, mailbox, data_dir, as_json)


@inbound.command("discard")
@click.argument("email_id")
@click.option("--mailbox", help="The mailbox (needed only if the id is held in several).")
@click.option("--as", "actor", default=getpass.getuser, show_default="your login name", help="Who discards it.")
@data_dir_option
@json_option
def inbound_discard(email_id: str, mailbox: str | None, actor: str, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Keep a held email from agents for good (it stays in the sandbox for the record)."""
    _decide_held(email_id, "discard", actor, mailbox, data_dir, as_json)


# --- sandbox -----------------------------------------------------------------------------


@main.group()
@group_data_dir_option
def sandbox() -> None:
    """Look into the embedded mail sandbox."""


@sandbox.command("list")
@click.option("--mailbox", help="Only copies sent from or delivered to this address.")
@data_dir_option
@json_option
def sandbox_list(mailbox: str | None, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Every delivered copy the sandbox holds, one row per recipient."""
    settings = settings_from(data_dir=data_dir)
    path = settings.data_dir / "sandbox.db"
    if not path.exists():
        click.echo(f"mailgate: no sandbox at {path}; has `mailgate serve` run with this data dir?", err=True)
        finish(1)
    store = SandboxStore(path)
    rows: list[dict[str, Any]] = [
        {
            "message_id": d.message_id,
            "from": d.sender,
            "to": d.to,
            "recipient": d.recipient,
            "subject": d.subject,
            "delivered_at": d.delivered_at.isoformat(),
            "local": d.local,
        }
        for d in store.deliveries(mailbox)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(
            columns(
                [
                    [
                        r["delivered_at"][:19],
                        str(r["from"]),
                        str(r["recipient"]),
                        str(r["subject"])[:50],
                        str(r["message_id"]),
                    ]
                    for r in rows
                ],
                ["DELIVERED", "FROM", "RECIPIENT", "SUBJECT", "MESSAGE_ID"],
            )
        )
    finish(0)


# --- OAuth for mailboxes -----------------------------------------------------------------


@main.group()
def auth() -> None:
    """OAuth for mailboxes with auth = "oauth2" (Gmail, Microsoft 365, or a custom server)."""


def _grants(settings: Settings) -> Any:
    from workflows.providers.oauth import GrantStore

    return GrantStore(settings.data_dir, load_secrets(settings).secret_key)


@auth.command("login")
@click.argument("address")
@click.option("--no-browser", is_flag=True, help="Print the URL to open instead of opening a browser.")
@click.option("--device", is_flag=True, help="Device-code flow: enter a code on another device (headless servers).")
@data_dir_option
def auth_login(address: str, no_browser: bool, device: bool, data_dir: Path | None) -> NoReturn:
    """Connect a mailbox: the authorization-code flow with PKCE, or --device."""
    from server.oauth_login import login_with_code, login_with_device, oauth_entry

    settings = settings_from(data_dir=data_dir)

    def announce(text: str) -> None:
        click.echo(text, err=True)

    async def main() -> int:
        entry = oauth_entry(settings, address)
        store = _grants(settings)
        if device:
            grant = await login_with_device(entry, store, announce)
        else:
            grant = await login_with_code(entry, store, announce, browser=not no_browser)
        click.echo(f"{entry.address} is connected; the grant is stored encrypted in {settings.data_dir}")
        return 0 if grant.refresh_token else 1

    run(main)


@auth.command("status")
@click.argument("address", required=False)
@data_dir_option
@json_option
def auth_status(address: str | None, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Which OAuth mailboxes are connected, and until when their access tokens hold."""
    from server.oauth_login import oauth_entry, status_of

    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        entries = [oauth_entry(settings, address)] if address else [e for e in settings.mailboxes if e.auth == "oauth2"]
        store = _grants(settings)
        found = [await status_of(entry, store) for entry in entries]
        if as_json and address:
            emit(found[0], True, str)
        else:
            emit(
                found,
                as_json,
                lambda: columns(
                    [[s.mailbox, s.provider, "yes" if s.connected else "no", s.state] for s in found],
                    ["MAILBOX", "PROVIDER", "CONNECTED", "STATE"],
                ),
            )
        return 0

    run(main)


@auth.command("logout")
@click.argument("address")
@data_dir_option
def auth_logout(address: str, data_dir: Path | None) -> NoReturn:
    """Forget a mailbox's grant (sending and reading stop until the next login)."""
    from server.oauth_login import oauth_entry

    settings = settings_from(data_dir=data_dir)

    async def main() -> int:
        entry = oauth_entry(settings, address)
        forgot = _grants(settings).forget(entry.address)
        click.echo(f"{entry.address}: " + ("grant forgotten" if forgot else "was not logged in"))
        return 0

    run(main)


# --- people and agents (their own module; imported last, it builds on the helpers above) ---

from server.cli_identities import agents, people  # noqa: E402

main.add_command(people)
main.add_command(agents)


if __name__ == "__main__":
    main()
