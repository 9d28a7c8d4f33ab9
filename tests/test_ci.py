"""CI runs the README's test command, and the lock it installs from agrees with pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    readme = [line for line in (ROOT / "README.md").read_text().splitlines() if ".venv/bin/pytest" in line]
    assert len(readme) == 1, readme
    assert readme[0] in (ROOT / ".ci" / "run").read_text().splitlines()
    assert "-c constraints.txt" in readme[0]


def test_the_lock_pins_every_package_and_agrees_with_the_exact_pins() -> None:
    lines = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if not line.startswith("#")]
    locked = dict(line.split("==") for line in lines)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", name) and version for name, version in locked.items()), lines
    test_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    pins = dict(spec.split("==") for spec in test_extra if "==" in spec)
    assert {"ruff", "mypy"} <= set(pins)
    assert {name: locked.get(name) for name in pins} == pins
