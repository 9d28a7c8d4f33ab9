"""`mailgate people|agents`: who may decide, and which agent may use which mailbox."""

from __future__ import annotations

import click

from server.cli.command import Shown, columns, command, group
from server.identities import IdentityStore, NewAgent, NewPerson


def _secrets_once(new: NewPerson) -> Shown:
    return Shown(
        new,
        lambda: (
            f"{new.email}\n  password:  {new.password}\n  api token: {new.api_token}\n"
            "These are shown once; `mailgate people reset` makes new ones."
        ),
    )


def _token_once(new: NewAgent) -> Shown:
    return Shown(
        new, lambda: f"{new.name}\n  token: {new.token}\nShown once; `mailgate agents rotate` makes a new one."
    )


@group
def people() -> None:
    """People who approve and review sends, and admins."""


@command(people, "add", opens="identities")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option("--admin", is_flag=True, help="May manage mailboxes, modes and people.")
@click.option("--approves", multiple=True, metavar="MAILBOX", help="Decides this mailbox's sends (repeatable).")
@click.option("--reviews", multiple=True, metavar="MAILBOX", help="Reviews this mailbox's sends (repeatable).")
async def people_add(
    store: IdentityStore, email: str, name: str, admin: bool, approves: tuple[str, ...], reviews: tuple[str, ...]
) -> Shown:
    """Add a person; prints, once, their password and API token."""
    return _secrets_once(store.add_person(email, name=name, admin=admin, approves=approves, reviews=reviews))


@command(people, "list", opens="identities")
async def people_list(store: IdentityStore) -> Shown:
    """Everyone, with their roles."""
    everyone = store.people()
    rows = [[p.email, p.name, "yes" if p.admin else "", ", ".join(p.approves), ", ".join(p.reviews)] for p in everyone]
    return Shown(everyone, lambda: columns(rows, ["EMAIL", "NAME", "ADMIN", "APPROVES", "REVIEWS"]))


@command(people, "set", opens="identities")
@click.argument("email")
@click.option("--name", default=None, help="New display name.")
@click.option("--admin/--no-admin", default=None, help="Grant or withdraw the admin role.")
@click.option("--approves", multiple=True, metavar="MAILBOX", help="Replaces the mailboxes they approve.")
@click.option("--reviews", multiple=True, metavar="MAILBOX", help="Replaces the mailboxes they review.")
@click.option("--no-approves", is_flag=True, help="Approves no mailbox.")
@click.option("--no-reviews", is_flag=True, help="Reviews no mailbox.")
async def people_set(
    store: IdentityStore,
    email: str,
    name: str | None,
    admin: bool | None,
    approves: tuple[str, ...],
    reviews: tuple[str, ...],
    no_approves: bool,
    no_reviews: bool,
) -> Shown:
    """Change a person's name or roles (the lists given replace the old ones)."""
    person = store.update_person(
        email,
        name=name,
        admin=admin,
        approves=[] if no_approves else approves or None,
        reviews=[] if no_reviews else reviews or None,
    )
    return Shown(person, lambda: f"updated {person.email}")


@command(people, "reset", opens="identities")
@click.argument("email")
async def people_reset(store: IdentityStore, email: str) -> Shown:
    """New password and API token for a person; the old ones stop working."""
    return _secrets_once(store.reset_person(email))


@command(people, "remove", opens="identities")
@click.argument("email")
async def people_remove(store: IdentityStore, email: str) -> Shown:
    """Remove a person; their password and token stop working at once."""
    store.remove_person(email)
    return Shown({"email": email.strip().lower(), "removed": True}, lambda: f"removed {email}")


@group
def agents() -> None:
    """Agents, each with its own token and mailboxes (MAILGATE_AGENT_TOKEN is the built-in `default`)."""


@command(agents, "add", opens="identities")
@click.argument("name")
@click.option("--mailbox", "mailboxes", multiple=True, metavar="ADDRESS", help="A mailbox it may use (repeatable).")
@click.option("--read-only", is_flag=True, help="Only reading tools; no sends or changes.")
@click.option("--owner", default="", metavar="EMAIL", help="The person answerable for it; cannot approve its sends.")
async def agents_add(store: IdentityStore, name: str, mailboxes: tuple[str, ...], read_only: bool, owner: str) -> Shown:
    """Add an agent; prints its token once."""
    return _token_once(store.add_agent(name, mailboxes=mailboxes, read_only=read_only, owner=owner))


@command(agents, "list", opens="identities")
async def agents_list(store: IdentityStore) -> Shown:
    """Every agent with its mailboxes."""
    every = store.agents()
    rows = [[a.name, ", ".join(a.mailboxes), "yes" if a.read_only else "", a.owner] for a in every]
    return Shown(every, lambda: columns(rows, ["NAME", "MAILBOXES", "READ_ONLY", "OWNER"]))


@command(agents, "rotate", opens="identities")
@click.argument("name")
async def agents_rotate(store: IdentityStore, name: str) -> Shown:
    """A new token for an agent; the old one stops working."""
    return _token_once(store.rotate_agent(name))


@command(agents, "remove", opens="identities")
@click.argument("name")
async def agents_remove(store: IdentityStore, name: str) -> Shown:
    """Remove an agent; its token stops working at once."""
    store.remove_agent(name)
    return Shown({"name": name.strip().lower(), "removed": True}, lambda: f"removed {name}")
