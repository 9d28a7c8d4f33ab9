"""`mailgate mailbox|reviews|upgrades`: mailboxes, their oversight mode and policies, and what humans review."""

from __future__ import annotations

import getpass
from typing import cast, get_args

import click

from server.app import Mailgate
from server.audit import audit_log
from server.cli.command import Shown, columns, command, group
from server.validation import PolicyChanges
from workflows.models import OversightMode

MODES = list(get_args(OversightMode))


@group
def mailbox() -> None:
    """List, create and set the oversight mode of mailboxes."""


@command(mailbox, "list")
async def mailbox_list(app: Mailgate) -> Shown:
    """All mailboxes with their oversight mode."""
    boxes = await app.mailboxes.all()
    rows = [[b.address, b.oversight_mode, b.provider, b.display_name] for b in boxes]
    return Shown(boxes, lambda: columns(rows, ["ADDRESS", "MODE", "PROVIDER", "NAME"]))


@command(mailbox, "create")
@click.argument("address")
@click.option("--mode", type=click.Choice(MODES), help="Oversight mode (default: the server default).")
@click.option("--display-name", default="", help="Name shown in From.")
async def mailbox_create(app: Mailgate, address: str, mode: str | None, display_name: str) -> Shown:
    """Create a sandbox mailbox."""
    config = await app.mailboxes.create(
        address,
        created_by=getpass.getuser(),
        mode=cast(OversightMode | None, mode),
        display_name=display_name,
    )
    return Shown(config, lambda: f"created {config.address} ({config.mode})")


@command(mailbox, "set-mode", actor="Who changes it.")
@click.argument("address")
@click.argument("mode", type=click.Choice(MODES))
@click.option("--reason", default="", help="Why (kept in the audit log).")
async def mailbox_set_mode(app: Mailgate, address: str, mode: str, actor: str, reason: str) -> Shown:
    """Set a mailbox's oversight mode (humans may loosen as well as tighten)."""
    config = await app.mailboxes.set_mode(address, mode, actor=actor, role="human", reason=reason)  # type: ignore[arg-type]
    return Shown(config, lambda: f"{config.address} is now {config.mode}")


@command(mailbox, "configure", actor="Who changes it.")
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
async def mailbox_configure(
    app: Mailgate,
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
) -> Shown:
    """Set a mailbox's policies: approvers, reviewers, allow/deny lists, rate limits, approval window."""
    lists = {"approvers": approvers, "reviewers": reviewers, "allow": allow, "deny": deny}
    changes = PolicyChanges(
        display_name=display_name,
        rate_per_hour=rate_per_hour,
        rate_per_day=rate_per_day,
        approval_window_hours=approval_window_hours,
        **{name: [] if name in clear else list(values) if values else None for name, values in lists.items()},
    )
    config = await app.mailboxes.configure(address, changes, actor=actor)
    return Shown(config, lambda: "\n".join(f"{key}: {value}" for key, value in config.model_dump().items()))


@command(mailbox, "audit")
@click.argument("address", required=False)
@click.option("--send", "send_id", help="Only this send.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
async def mailbox_audit(app: Mailgate, address: str | None, send_id: str | None, limit: int) -> Shown:
    """What happened, newest first: sends, decisions, edits, mode changes, upgrade requests."""
    page = await audit_log(app.mailboxes, app.sends, mailbox=address, send_id=send_id, limit=limit)
    rows = [
        [e.at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, e.actor, e.send_id or e.mailbox or "", e.detail[:60]]
        for e in page.events
    ]
    return Shown(page.events, lambda: columns(rows, ["AT", "EVENT", "WHO", "SEND/MAILBOX", "DETAIL"]))


@group
def reviews() -> None:
    """Sends from monitored mailboxes that went out and wait for a human to look at them."""


@command(reviews, "list")
@click.option("--mailbox", help="Only this mailbox.")
@click.option("--all", "include_acked", is_flag=True, help="Include reviews already acknowledged.")
async def reviews_list(app: Mailgate, mailbox: str | None, include_acked: bool) -> Shown:
    """The review list, oldest first."""
    found = await app.mailboxes.reviews(mailbox, include_acked=include_acked)
    rows = [[r.send_id, r.mailbox, r.at.strftime("%Y-%m-%d %H:%M"), r.acked_by or "-"] for r in found]
    return Shown(found, lambda: columns(rows, ["SEND_ID", "MAILBOX", "SENT", "REVIEWED_BY"]))


@command(reviews, "ack", actor="Who reviewed it.")
@click.argument("send_id")
async def reviews_ack(app: Mailgate, send_id: str, actor: str) -> Shown:
    """Mark a monitored send as reviewed."""
    review = await app.ack_review(send_id, actor)
    return Shown(review, lambda: f"{send_id}: reviewed by {review.acked_by}")


@group
def upgrades() -> None:
    """Requests from agents to loosen a mailbox, with the one-time codes to give them."""


@command(upgrades, "list")
@click.option("--mailbox", help="Only this mailbox.")
async def upgrades_list(app: Mailgate, mailbox: str | None) -> Shown:
    """Upgrade requests, newest first. Give the code to the agent only if you agree."""
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
    return Shown(found, lambda: columns(rows, ["MAILBOX", "MODE", "STATUS", "CODE", "EXPIRES", "REASON"]))
