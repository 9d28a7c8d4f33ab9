"""What every `mailgate` command shares: the `command` decorator and how results are printed.

A command body is an async function that gets the opened app (or the settings alone) and the
command's own options, and returns what to print (`Shown`) or an exit status. The decorator adds
`--data-dir`, `--json` and `--as`, loads the settings, opens the app and runs the body.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, cast

import click
from click.core import ParameterSource
from pydantic import BaseModel

from server.app import Mailgate
from server.connect import connect
from server.credentials import load_secrets
from server.errors import MailgateError
from server.identities import IdentityStore
from server.running import attach
from server.settings import Settings, SettingsError, load_settings
from server.sqlite_identities import open_identities
from server.stores import database_url

DATA_DIR_HELP = "Where mailgate keeps its state (env MAILGATE_DATA_DIR; default: your user data folder)."
DATA_DIR_GIVEN = "mailgate.data_dir"

Printable = BaseModel | Sequence[BaseModel] | Mapping[str, Any] | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Shown:
    """What a command prints: ``value`` as JSON with --json, else the ``text()`` for people."""

    value: Printable
    text: Callable[[], str]

    def echo(self, as_json: bool) -> None:
        if not as_json:
            click.echo(self.text())
        elif isinstance(self.value, BaseModel):
            click.echo(self.value.model_dump_json(indent=2))
        elif isinstance(self.value, Mapping):
            click.echo(json.dumps(self.value, indent=2, default=str))
        else:
            items = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in self.value]
            click.echo(json.dumps(items, indent=2, default=str))


def columns(rows: list[list[str]], headers: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [headers, *rows]]
    return "\n".join(line.rstrip() for line in lines)


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


def settings_from(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        click.echo(f"mailgate: {exc}", err=True)
        finish(2)


async def open_app(settings: Settings) -> Mailgate:
    settings = attach(settings)
    client = await connect(settings)
    return Mailgate.build(settings, client, load_secrets(settings), strict=False)


def _given_data_dir(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """--data-dir works before the subcommand as well as after it: a value given on the command
    line anywhere wins over MAILGATE_DATA_DIR, and the one nearest the command wins overall."""
    if value is not None and ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE:
        ctx.meta[DATA_DIR_GIVEN] = value
        return value
    return cast(Path | None, ctx.meta.get(DATA_DIR_GIVEN, value))


def group(fn: Callable[[], None]) -> click.Group:
    """A command group that takes --data-dir too (`mailgate approvals --data-dir X list`)."""
    option = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        callback=_given_data_dir,
        expose_value=False,
        is_eager=True,
        help=DATA_DIR_HELP,
    )
    return click.group()(option(fn))


Body = Callable[..., Awaitable[Shown | int]]


def command(
    parent: click.Group | None,
    name: str,
    *,
    opens: Literal["app", "settings", "identities"] = "app",
    json: bool = True,
    actor: str | None = None,
    settings_options: Sequence[str] = (),
) -> Callable[[Body], click.Command]:
    """Make ``body`` the command ``name`` of ``parent`` (a top-level command when None).

    It takes --data-dir; --json when ``json`` (the body returns what to print, a `Shown`);
    --as ACTOR when ``actor`` gives that option's help (the body gets it as ``actor``).
    The body's first argument is the app opened against the data dir's stack; or, for commands
    that need no Temporal, the settings alone (``opens="settings"``) or the people and agents
    (``opens="identities"``). Options named in ``settings_options`` are settings given on the
    command line (`serve --port`). The body returns a `Shown` to print, or an exit status.
    """

    def decorate(body: Body) -> click.Command:
        def callback(data_dir: Path | None, as_json: bool = False, **options: Any) -> NoReturn:
            overrides = {key: options.pop(key) for key in settings_options}
            settings = settings_from(data_dir=data_dir, **overrides)

            async def main() -> int:
                target: Mailgate | Settings | IdentityStore
                if opens == "app":
                    target = await open_app(settings)
                elif opens == "identities":
                    target = open_identities(settings.data_dir, database_url(settings))
                else:
                    target = settings
                result = await body(target, **options)
                if isinstance(result, Shown):
                    result.echo(as_json)
                    return 0
                return result

            run(main)

        # The body's own click.option decorators collect on it, last first; ours follow them.
        params: list[click.Parameter] = list(reversed(getattr(body, "__click_params__", [])))
        if actor is not None:
            params.append(
                click.Option(["--as", "actor"], default=getpass.getuser, show_default="your login name", help=actor)
            )
        params.append(
            click.Option(
                ["--data-dir"],
                type=click.Path(file_okay=False, path_type=Path),
                envvar="MAILGATE_DATA_DIR",
                callback=_given_data_dir,
                help=DATA_DIR_HELP,
            )
        )
        if json:
            params.append(click.Option(["--json", "as_json"], is_flag=True, help="Print JSON instead of a table."))
        make = click.command if parent is None else parent.command
        return make(name, help=body.__doc__, params=params)(callback)

    return decorate
