"""`mailgate approvals|sends`: the human side of every decision (sends and bulk trash requests),
and what a send or a trash request holds."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar, get_args

import anyio
import click
from click.core import ParameterSource
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from server.app import Mailgate
from server.cli.command import Shown, columns, command, group, open_app
from server.deciders import decidable as decidable_by
from server.deciders import refusal
from server.errors import Forbidden, InvalidInput
from server.identities import Person
from server.settings import Settings
from server.trash_approvals import TrashDetails, TrashSummary, is_trash_id, trash_details
from server.validation import check_person, parse_edits
from workflows.mail.visibility import draft_warnings, show_invisible
from workflows.models import Decision, EmailAddress, SendStatus, SendSummary

STATUSES = ["pending", "all", *get_args(SendStatus)]
D = TypeVar("D", SendSummary, TrashSummary)


@group
def approvals() -> None:
    """List pending sends and bulk trash requests; show, approve or reject them."""


@command(approvals, "list")
@click.option("--mailbox", help="Only this mailbox.")
@click.option("--status", type=click.Choice(STATUSES), default="pending", show_default=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
async def approvals_list(app: Mailgate, mailbox: str | None, status: str, limit: int) -> Shown:
    """Sends and bulk trash requests (ids trash-...) waiting for a decision.

    Sends newest first; trash requests after them, with --status pending or all only."""
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
    trash: list[TrashSummary] = []
    if status in ("pending", "all"):
        # Bulk trash requests wait for the same humans, by the same rule (kind "trash" in --json).
        trash = await decidable(app, await app.trash.pending(mailbox, None if status == "all" else "pending_approval"))
        rows += trash_rows(trash)
    listed: list[SendSummary | TrashSummary] = [*sends, *trash]
    return Shown(listed, lambda: columns(rows, ["SEND_ID", "STATUS", "MAILBOX", "TO", "SUBJECT", "REQUESTED"]))


def trash_rows(requests: list[TrashSummary]) -> list[list[str]]:
    """Trash requests in the approvals table's columns: no recipients; the subject says what."""
    return [
        [
            r.request_id,
            r.status,
            r.mailbox,
            "",
            f"[trash {r.count} emails, asked by {r.requester}]",
            r.requested_at.strftime("%Y-%m-%d %H:%M") if r.requested_at else "",
        ]
        for r in requests
    ]


@command(approvals, "show")
@click.argument("send_id", metavar="ID")
async def approvals_show(app: Mailgate, send_id: str) -> Shown:
    """One send or bulk trash request, by an id from `approvals list`.

    A send as `mailgate sends show` shows it; a trash request (trash-...) with its mailbox, count,
    requester, status, decision and each email's id, sender and subject."""
    if not is_trash_id(send_id):
        return await send_shown(app, send_id)
    details = await trash_details(app.inbox, await app.trash.status(send_id))
    return Shown(details, lambda: trash_text(details))


def trash_text(details: TrashDetails) -> str:
    # Senders and subjects come from inbound mail: invisible characters shown as <U+XXXX>.
    lines = [
        f"trash:     {details.request_id} ({details.status})",
        f"mailbox:   {details.mailbox}",
        f"emails:    {len(details.email_ids)} to move to the trash",
        f"requested: {details.requested_at:%Y-%m-%d %H:%M:%S} by {show_invisible(details.requester)}",
    ]
    if details.expires_at and details.status == "pending_approval":
        lines.append(f"expires:   {details.expires_at:%Y-%m-%d %H:%M:%S}")
    if details.decision:
        d = details.decision
        lines.append(f"decision:  {d.decision} by {show_invisible(d.approver)} ({d.channel})")
    if details.reason:
        lines.append(f"reason:    {show_invisible(details.reason)}")
    rows = [
        [e.email_id, show_invisible(e.sender[:40]), show_invisible(e.subject[:60]), e.folder]
        if e.found
        else [e.email_id, "(not in this mailbox any more)", "", ""]
        for e in details.emails
    ]
    lines += ["", columns(rows, ["EMAIL_ID", "FROM", "SUBJECT", "FOLDER"])]
    if details.outcomes:
        lines += ["", "outcomes:", *(f"  {o.email_id}: {show_invisible(o.result)}" for o in details.outcomes)]
    lines += ["", "history:"]
    lines += [f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.kind:<16} {e.actor}  {e.detail}" for e in details.events]
    return "\n".join(lines)


@command(approvals, "approve", opens="settings", actor="Who decides.")
@click.argument("send_id")
@click.option("--reason", help="Why (kept in the audit log).")
@click.option("--subject", help="Approve with this subject instead.")
@click.option("--body", help="Approve with this body instead.")
@click.option("--body-file", type=click.File("r"), help="Approve with the body read from this file.")
@click.option("--to", "to", multiple=True, help="Approve with these To recipients instead (repeatable).")
@click.option("--cc", "cc", multiple=True, help="Approve with these Cc recipients instead (repeatable).")
@click.option("--bcc", "bcc", multiple=True, help="Approve with these Bcc recipients instead (repeatable).")
async def approvals_approve(
    settings: Settings,
    send_id: str,
    actor: str,
    reason: str | None,
    subject: str | None,
    body: str | None,
    body_file: Any,
    to: tuple[str, ...],
    cc: tuple[str, ...],
    bcc: tuple[str, ...],
) -> Shown | int:
    """Approve a pending send, optionally with edits; the edited version is what goes out.

    A bulk trash request (trash-...) is approved as it is (no edits): its emails move to the trash."""
    edits = parse_edits(
        subject=subject,
        body=body_file.read() if body_file else body,
        to=list(to) or None,
        cc=list(cc) or None,
        bcc=list(bcc) or None,
    )
    decision = Decision(decision="approve", approver=check_person(actor), reason=reason, edits=edits, channel="cli")
    return await _decide(settings, send_id, decision)


@command(approvals, "reject", opens="settings", actor="Who decides.")
@click.argument("send_id")
@click.option("--reason", required=True, help="Why; the agent sees it.")
async def approvals_reject(settings: Settings, send_id: str, actor: str, reason: str) -> Shown | int:
    """Reject a pending send or bulk trash request (trash-...) with a reason."""
    decision = Decision(decision="reject", approver=check_person(actor), reason=reason, channel="cli")
    return await _decide(settings, send_id, decision)


async def _decide(settings: Settings, send_id: str, decision: Decision) -> Shown | int:
    """Answered by the workflow when a worker runs; otherwise stored until one does. The edits and
    the approver were checked before the app opens: bad input is refused even with no stack running."""
    named = click.get_current_context().get_parameter_source("actor") == ParameterSource.COMMANDLINE
    app = await open_app(settings)
    if os.environ.get("MAILGATE_API_TOKEN"):
        decision = await person_decision(app, send_id, decision, named)
    if is_trash_id(send_id):
        trash = await app.trash.decide(send_id, decision)
        done = "approved" if decision.decision == "approve" else "rejected"
        outcomes = "".join(f"\n  {o.email_id}: {o.result}" for o in trash.outcomes)
        return Shown(trash, lambda: f"{send_id}: {done} by {decision.approver}; status {trash.status}{outcomes}")
    if not await _has_worker(app):
        await app.sends.signal_decision(send_id, decision.model_copy(update={"decision_id": uuid.uuid4().hex}))
        click.echo(f"{send_id}: decision recorded; it takes effect when a mailgate worker runs", err=True)
        return 0
    state = await app.sends.decide(send_id, decision)
    verb = "approved" if decision.decision == "approve" else "rejected"
    return Shown(state, lambda: f"{send_id}: {verb} by {decision.approver}; status {state.status}")


async def token_person(app: Mailgate) -> Person | None:
    """The person whose API token MAILGATE_API_TOKEN holds; None when it is unset."""
    token = os.environ.get("MAILGATE_API_TOKEN", "").strip()
    if not token:
        return None
    person = await anyio.to_thread.run_sync(app.identities.person_by_token, token)
    if person is None:
        raise Forbidden("MAILGATE_API_TOKEN is not a person's API token here; `mailgate people reset` makes a new one")
    return person


async def decidable(app: Mailgate, sends: Sequence[D]) -> list[D]:
    """With a person's token, only the sends (or trash requests) that person may decide; else all."""
    person = await token_person(app)
    if person is None:
        return list(sends)
    return await decidable_by(app, person, sends)


async def person_decision(app: Mailgate, send_id: str, decision: Decision, named: bool) -> Decision:
    """With a person's API token (MAILGATE_API_TOKEN) the CLI decides in that person's name only:
    `--as` naming someone else is refused."""
    person = await token_person(app)
    if person is None:
        raise Forbidden("MAILGATE_API_TOKEN is empty; set it to your API token from `mailgate people add|reset`")
    if named and decision.approver.strip().lower() != person.email:
        raise Forbidden(f"--as: this token belongs to {person.email}; it cannot act as {decision.approver.strip()}")
    state = await app.trash.status(send_id) if is_trash_id(send_id) else await app.sends.status(send_id)
    refused = await refusal(app, person, state.mailbox, state.requester)
    if refused is not None:
        raise Forbidden(refused)
    return decision.model_copy(update={"approver": person.email})


async def _has_worker(app: Mailgate) -> bool:
    response = await app.client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=app.settings.temporal_namespace,
            task_queue=TaskQueue(name=app.settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return bool(response.pollers)


@group
def sends() -> None:
    """Look at sends."""


@command(sends, "show")
@click.argument("send_id")
async def sends_show(app: Mailgate, send_id: str) -> Shown:
    """Everything about one send: status, draft, decision, edits, audit events.

    A bulk trash request (trash-...) is shown by `mailgate approvals show`."""
    if is_trash_id(send_id):
        request_id = send_id.strip()
        raise InvalidInput(f"{request_id} is a bulk trash request: `mailgate approvals show {request_id}` shows it")
    return await send_shown(app, send_id)


async def send_shown(app: Mailgate, send_id: str) -> Shown:
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

    return Shown(state, table)
