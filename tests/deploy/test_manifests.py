"""The example deployment (deploy/compose.yaml, deploy/k8s/*.yaml, docs/deploy.md) names only
commands, options and settings mailgate has: a rename in the CLI or the settings fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import yaml

from server.cli import main
from server.settings import Settings
from server.web.ops import Ops

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOC = ROOT / "docs" / "deploy.md"
# Variables read outside the Settings model.
OTHER_VARIABLES = {"MAILGATE_CONFIG", "MAILGATE_API_TOKEN", "MAILGATE_URL"}
# Options and variables named in the manifests before mailgate has them (none now: h-pg landed
# `serve --no-worker` and MAILGATE_DATABASE_URL). An entry hides nothing else.
PENDING_OPTIONS: set[tuple[str, str]] = set()
PENDING_VARIABLES: set[str] = set()


def documents() -> Iterator[tuple[str, Any]]:
    for path in [DEPLOY / "compose.yaml", *sorted((DEPLOY / "k8s").glob("*.yaml"))]:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                yield path.name, doc


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def mailgate_commands() -> list[tuple[str, list[str]]]:
    """Every argument list given to the image (whose entrypoint is `mailgate`)."""
    found: list[tuple[str, list[str]]] = []
    for name, doc in documents():
        if name == "compose.yaml":
            for service, spec in doc["services"].items():
                if "build" in spec and "command" in spec:
                    found.append((f"{name}:{service}", [str(a) for a in spec["command"]]))
            continue
        for node in walk(doc):
            if isinstance(node, dict) and "image" in node and "mailgate" in str(node["image"]):
                command = [str(a) for a in node.get("command", [])]
                assert command in ([], ["mailgate"]), f"{name}: the image's entrypoint is mailgate: {command}"
                found.append((f"{name}:{node['name']}", [str(a) for a in node.get("args", [])]))
    return found


def variables() -> set[str]:
    names: set[str] = set()
    for _, doc in documents():
        for node in walk(doc):
            if isinstance(node, dict):
                names |= {k for k in node if isinstance(k, str) and k.startswith("MAILGATE_")}
                if isinstance(node.get("name"), str) and node["name"].startswith("MAILGATE_"):
                    names.add(node["name"])
            elif isinstance(node, str):
                names |= set(re.findall(r"\bMAILGATE_[A-Z0-9_]+", node))
    names |= set(re.findall(r"\bMAILGATE_[A-Z0-9_]+", DOC.read_text()))
    names |= set(re.findall(r"\bMAILGATE_[A-Z0-9_]+", (DEPLOY / "Dockerfile").read_text()))
    return names


def resolve(args: list[str]) -> list[str]:
    """Problems with one `mailgate ARGS...`: unknown commands or options, bad values."""
    problems: list[str] = []
    command: click.Command = main
    path: list[str] = []
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        if sub is None:
            return [f"no command `mailgate {' '.join([*path, rest[0]])}`"]
        path.append(rest.pop(0))
        command = sub
    if isinstance(command, click.Group):
        return [f"`mailgate {' '.join(path)}` needs a subcommand"]
    options = {o: p for p in command.params if isinstance(p, click.Option) for o in [*p.opts, *p.secondary_opts]}
    while rest:
        flag = rest.pop(0)
        option = options.get(flag)
        if option is None:
            if (" ".join(path), flag) not in PENDING_OPTIONS:
                problems.append(f"`mailgate {' '.join(path)}` has no option {flag}")
            continue
        if not option.is_flag:
            value = rest.pop(0)
            try:
                option.type.convert(value, option, None)
            except click.BadParameter as exc:
                problems.append(f"{flag} {value}: {exc}")
    return problems


def test_every_mailgate_command_in_the_manifests_exists() -> None:
    commands = mailgate_commands()
    # Both roles of issue 19 and the setup job appear, so this test looks at something.
    heads = {tuple(args[:1]) for _, args in commands}
    assert {("serve",), ("worker",), ("setup",)} <= heads, commands
    problems = [f"{where}: {p}" for where, args in commands for p in resolve(args)]
    assert not problems, problems


def test_every_command_the_deploy_doc_runs_exists() -> None:
    runs = re.findall(r"^\s*(?:\$ )?mailgate ([^\n#|&;]+)", DOC.read_text(), re.MULTILINE)
    assert len(runs) >= 3
    problems = [p for line in runs for p in resolve([a for a in line.split() if not a.startswith("<")])]
    assert not problems, problems


def test_every_mailgate_variable_is_a_setting() -> None:
    settings = {f"MAILGATE_{name.upper()}" for name in Settings.model_fields}
    unknown = variables() - settings - OTHER_VARIABLES - PENDING_VARIABLES
    assert not unknown, f"not settings of mailgate: {sorted(unknown)}"


def test_probes_and_scrapes_use_paths_mailgate_answers() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not reached")

    answered = set(Ops(app, started=lambda: True, checks={}, metrics_addresses=[], metrics_token=None).routes)
    paths = {node["path"] for _, doc in documents() for node in walk(doc) if isinstance(node, dict) and "path" in node}
    compose = (DEPLOY / "compose.yaml").read_text()
    paths |= set(re.findall(r"http://127\.0\.0\.1:8025(/[a-z]+)", compose))
    assert {"/livez", "/readyz", "/metrics"} <= paths, paths
    assert paths <= answered, paths - answered


def test_the_pending_names_are_still_pending() -> None:
    """Once h-pg's options land, the PENDING sets must shrink (so they never hide a typo)."""
    serve = main.commands["serve"]
    landed = {("serve", o) for p in serve.params for o in getattr(p, "opts", [])} & PENDING_OPTIONS
    landed_vars = {f"MAILGATE_{n.upper()}" for n in Settings.model_fields} & PENDING_VARIABLES
    assert not landed and not landed_vars, f"remove from the PENDING sets: {landed | landed_vars}"
