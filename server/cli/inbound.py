"""`mailgate inbound|sandbox`: inbound mail held by gated_all, and what the embedded sandbox holds."""

from __future__ import annotations

from typing import Any, Literal

import click

from server.app import Mailgate
from server.cli.command import Shown, columns, command, group
from server.errors import NotFound
from server.settings import Settings
from server.stores import sandbox_database
from server.validation import check_person
from workflows.providers.sandbox.store import SandboxStore

HELD_MAILBOX_HELP = "The mailbox (needed only if the id is held in several)."


@group
def inbound() -> None:
    """Inbound mail held for a human in gated_all mailboxes: list, release, discard."""


@command(inbound, "list")
@click.option("--mailbox", help="Only this mailbox.")
async def inbound_list(app: Mailgate, mailbox: str | None) -> Shown:
    """Held emails, oldest first. Agents see none of them until you release one."""
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
    return Shown(held, lambda: columns(rows, ["EMAIL_ID", "MAILBOX", "RECEIVED", "FROM", "SUBJECT", "SNIPPET"]))


@command(inbound, "release", actor="Who releases it.")
@click.argument("email_id")
@click.option("--mailbox", help=HELD_MAILBOX_HELP)
async def inbound_release(app: Mailgate, email_id: str, mailbox: str | None, actor: str) -> Shown:
    """Let agents see a held email (it then appears in check_inbox and wakes reply waits)."""
    return await _decide_held(app, email_id, "release", actor, mailbox)


@command(inbound, "discard", actor="Who discards it.")
@click.argument("email_id")
@click.option("--mailbox", help=HELD_MAILBOX_HELP)
async def inbound_discard(app: Mailgate, email_id: str, mailbox: str | None, actor: str) -> Shown:
    """Keep a held email from agents for good (it stays in the sandbox for the record)."""
    return await _decide_held(app, email_id, "discard", actor, mailbox)


async def _decide_held(
    app: Mailgate, email_id: str, change: Literal["release", "discard"], actor: str, mailbox: str | None
) -> Shown:
    email = await app.inbox.decide_held(email_id, change, check_person(actor, "--as"), mailbox)
    verb = "released: agents can read it now" if change == "release" else "discarded: agents never see it"
    return Shown(email, lambda: f"{email.email_id} in {email.mailbox} {verb}")


@group
def sandbox() -> None:
    """Look into the embedded mail sandbox."""


@command(sandbox, "list", opens="settings")
@click.option("--mailbox", help="Only copies sent from or delivered to this address.")
async def sandbox_list(settings: Settings, mailbox: str | None) -> Shown:
    """Every delivered copy the sandbox holds, one row per recipient."""
    path = settings.data_dir / "sandbox.db"
    if settings.database_url is None and not path.exists():
        raise NotFound(f"no sandbox at {path}; has `mailgate serve` run with this data dir?")
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
        for d in SandboxStore(sandbox_database(settings)).deliveries(mailbox)
    ]
    table = [
        [r["delivered_at"][:19], str(r["from"]), str(r["recipient"]), str(r["subject"])[:50], str(r["message_id"])]
        for r in rows
    ]
    return Shown(rows, lambda: columns(table, ["DELIVERED", "FROM", "RECIPIENT", "SUBJECT", "MESSAGE_ID"]))
