"""`mailgate people` and `mailgate agents`: who may decide, and which agent may use which mailbox."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, ParamSpec

import click
from pydantic import BaseModel

from server.identities import IdentityError, IdentityStore, NewAgent, NewPerson, open_identities
from server.settings import SettingsError, load_settings

# server.cli imports this module to register its groups, so the few helpers needed are here.
P = ParamSpec("P")


def data_dir_option(fn: Callable[P, Any]) -> Callable[P, Any]:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="MAILGATE_DATA_DIR",
        help="Where mailgate keeps its state (env MAILGATE_DATA_DIR; default: your user data folder).",
    )(fn)


def json_option(fn: Callable[P, Any]) -> Callable[P, Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(fn)


def finish(status: int) -> NoReturn:
    sys.exit(status)


def emit(value: BaseModel | Sequence[BaseModel] | dict[str, Any], as_json: bool, table: Callable[[], str]) -> None:
    if not as_json:
        click.echo(table())
    elif isinstance(value, BaseModel):
        click.echo(value.model_dump_json(indent=2))
    elif isinstance(value, dict):
        click.echo(json.dumps(value, indent=2))
    else:
        click.echo(json.dumps([v.model_dump(mode="json") for v in value], indent=2))


def columns(rows: list[list[str]], headers: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [headers, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def _store(data_dir: Path | None) -> IdentityStore:
    try:
        return open_identities(load_settings(data_dir=data_dir).data_dir)
    except SettingsError as exc:
        click.echo(f"mailgate: {exc}", err=True)
        finish(2)


def _refused(exc: IdentityError) -> NoReturn:
    click.echo(f"mailgate: {exc}", err=True)
    finish(1)


def _secrets_once(new: NewPerson, as_json: bool) -> None:
    emit(
        new,
        as_json,
        lambda: (
            f"{new.email}\n  password:  {new.password}\n  api token: {new.api_token}\n"
            "These are shown once; `mailgate people reset` makes new ones."
        ),
    )


@click.group()
def people() -> None:
    """People who approve and review sends, and admins."""


@people.command("add")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option("--admin", is_flag=True, help="May manage mailboxes, modes and people.")
@click.option("--approves", multiple=True, metavar="MAILBOX", help="Decides this mailbox's sends (repeatable).")
@click.option("--reviews", multiple=True, metavar="MAILBOX", help="Reviews this mailbox's sends (repeatable).")
@data_dir_option
@json_option
def people_add(
    email: str,
    name: str,
    admin: bool,
    approves: tuple[str, ...],
    reviews: tuple[str, ...],
    data_dir: Path | None,
    as_json: bool,
) -> NoReturn:
    """Add a person; prints, once, their password and API token."""
    try:
        new = _store(data_dir).add_person(email, name=name, admin=admin, approves=approves, reviews=reviews)
    except IdentityError as exc:
        _refused(exc)
    _secrets_once(new, as_json)
    finish(0)


@people.command("list")
@data_dir_option
@json_option
def people_list(data_dir: Path | None, as_json: bool) -> NoReturn:
    """Everyone, with their roles."""
    everyone = _store(data_dir).people()
    rows = [[p.email, p.name, "yes" if p.admin else "", ", ".join(p.approves), ", ".join(p.reviews)] for p in everyone]
    emit(everyone, as_json, lambda: columns(rows, ["EMAIL", "NAME", "ADMIN", "APPROVES", "REVIEWS"]))
    finish(0)


@people.command("set")
@click.argument("email")
@click.option("--name", default=None, help="New display name.")
@click.option("--admin/--no-admin", default=None, help="Grant or withdraw the admin role.")
@click.option("--approves", multiple=True, metavar="MAILBOX", help="Replaces the mailboxes they approve.")
@click.option("--reviews", multiple=True, metavar="MAILBOX", help="Replaces the mailboxes they review.")
@click.option("--no-approves", is_flag=True, help="Approves no mailbox.")
@click.option("--no-reviews", is_flag=True, help="Reviews no mailbox.")
@data_dir_option
@json_option
def people_set(
    email: str,
    name: str | None,
    admin: bool | None,
    approves: tuple[str, ...],
    reviews: tuple[str, ...],
    no_approves: bool,
    no_reviews: bool,
    data_dir: Path | None,
    as_json: bool,
) -> NoReturn:
    """Change a person's name or roles (the lists given replace the old ones)."""
    try:
        person = _store(data_dir).update_person(
            email,
            name=name,
            admin=admin,
            approves=[] if no_approves else approves or None,
            reviews=[] if no_reviews else reviews or None,
        )
    except IdentityError as exc:
        _refused(exc)
    emit(person, as_json, lambda: f"updated {person.email}")
    finish(0)


@people.command("reset")
@click.argument("email")
@data_dir_option
@json_option
def people_reset(email: str, data_dir: Path | None, as_json: bool) -> NoReturn:
    """New password and API token for a person; the old ones stop working."""
    try:
        new = _store(data_dir).reset_person(email)
    except IdentityError as exc:
        _refused(exc)
    _secrets_once(new, as_json)
    finish(0)


@people.command("remove")
@click.argument("email")
@data_dir_option
@json_option
def people_remove(email: str, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Remove a person; their password and token stop working at once."""
    try:
        _store(data_dir).remove_person(email)
    except IdentityError as exc:
        _refused(exc)
    emit({"email": email.strip().lower(), "removed": True}, as_json, lambda: f"removed {email}")
    finish(0)


@click.group()
def agents() -> None:
    """Agents, each with its own token and mailboxes (MAILGATE_AGENT_TOKEN is the built-in `default`)."""


def _token_once(new: NewAgent, as_json: bool) -> None:
    emit(
        new,
        as_json,
        lambda: f"{new.name}\n  token: {new.token}\nShown once; `mailgate agents rotate` makes a new one.",
    )


@agents.command("add")
@click.argument("name")
@click.option("--mailbox", "mailboxes", multiple=True, metavar="ADDRESS", help="A mailbox it may use (repeatable).")
@click.option("--read-only", is_flag=True, help="Only reading tools; no sends or changes.")
@click.option("--owner", default="", metavar="EMAIL", help="The person answerable for it; cannot approve its sends.")
@data_dir_option
@json_option
def agents_add(
    name: str, mailboxes: tuple[str, ...], read_only: bool, owner: str, data_dir: Path | None, as_json: bool
) -> NoReturn:
    """Add an agent; prints its token once."""
    try:
        new = _store(data_dir).add_agent(name, mailboxes=mailboxes, read_only=read_only, owner=owner)
    except IdentityError as exc:
        _refused(exc)
    _token_once(new, as_json)
    finish(0)


@agents.command("list")
@data_dir_option
@json_option
def agents_list(data_dir: Path | None, as_json: bool) -> NoReturn:
    """Every agent with its mailboxes."""
    every = _store(data_dir).agents()
    rows = [[a.name, ", ".join(a.mailboxes), "yes" if a.read_only else "", a.owner] for a in every]
    emit(every, as_json, lambda: columns(rows, ["NAME", "MAILBOXES", "READ_ONLY", "OWNER"]))
    finish(0)


@agents.command("rotate")
@click.argument("name")
@data_dir_option
@json_option
def agents_rotate(name: str, data_dir: Path | None, as_json: bool) -> NoReturn:
    """A new token for an agent; the old one stops working."""
    try:
        new = _store(data_dir).rotate_agent(name)
    except IdentityError as exc:
        _refused(exc)
    _token_once(new, as_json)
    finish(0)


@agents.command("remove")
@click.argument("name")
@data_dir_option
@json_option
def agents_remove(name: str, data_dir: Path | None, as_json: bool) -> NoReturn:
    """Remove an agent; its token stops working at once."""
    try:
        _store(data_dir).remove_agent(name)
    except IdentityError as exc:
        _refused(exc)
    emit({"name": name.strip().lower(), "removed": True}, as_json, lambda: f"removed {name}")
    finish(0)
