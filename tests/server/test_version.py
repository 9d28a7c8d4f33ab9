"""The version is written once, in pyproject.toml; everything that shows it reads the installed metadata."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner
from mcp import Client

from server.app import Mailgate
from server.cli import main
from server.mcp_server import build_mcp

ROOT = Path(__file__).resolve().parents[2]
METADATA = version("mailgate")


def test_pyproject_is_where_the_version_is_written() -> None:
    written = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert written == METADATA, "the installed metadata is stale: re-run `pip install -e '.[test]'`"
    # No second copy in the code: a literal would drift at the next bump.
    literal = re.compile(rf"""["']{re.escape(METADATA)}["']""")
    sources = [p for d in ("server", "workflows") for p in (ROOT / d).rglob("*.py")]
    copies = [str(p.relative_to(ROOT)) for p in sources if literal.search(p.read_text())]
    assert copies == []


def test_mailgate_version_prints_the_package_metadata() -> None:
    done = CliRunner().invoke(main, ["--version"])
    assert done.exit_code == 0, done.output
    assert done.output.strip() == f"mailgate, version {METADATA}"


async def test_mcp_server_info_carries_the_package_metadata(app: Mailgate) -> None:
    async with Client(build_mcp(app)) as client:
        assert client.server_info is not None
        assert (client.server_info.name, client.server_info.version) == ("mailgate", METADATA)
