"""Every third-party module that `server/` and `workflows/` import comes from a distribution that
pyproject.toml declares: an import that only works because another package happens to pull it in
breaks the day that package drops it."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Imported directly, but part of a declared parent's own API and required by it (checked below):
# pydantic pins pydantic-core and mcp pins mcp-types exactly, so declaring them apart could only conflict.
PART_OF = {"pydantic-core": "pydantic", "mcp-types": "mcp", "markupsafe": "jinja2", "protobuf": "temporalio"}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def _imported_top_levels() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("server", "workflows"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ("server", "workflows"):
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_distribution_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(requirement) for requirement in project["dependencies"]}
    providers = importlib.metadata.packages_distributions()
    undeclared = []
    for module, where in _imported_top_levels().items():
        distributions = {_name(d) for d in providers.get(module, [])}
        assert distributions, f"{module} (imported in {where}) is not installed"
        if distributions & declared:
            continue
        parents = {PART_OF[d] for d in distributions if d in PART_OF}
        if parents & declared:
            continue
        undeclared.append(f"{module} ({'/'.join(sorted(distributions))}, imported in {where})")
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_allowed_transitive_imports_are_required_by_their_parent() -> None:
    for distribution, parent in PART_OF.items():
        requires = {_name(r) for r in importlib.metadata.requires(parent) or [] if "extra ==" not in r}
        assert distribution in requires, f"{parent} no longer requires {distribution}: declare it"
