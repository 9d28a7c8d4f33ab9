"""Interop fixtures: one `mailgate serve` for the whole package, and the real MCP Inspector CLI.

The Inspector lives in .tools/inspector (gitignored), installed from the pinned package.json and
lock beside this file by `tests/interop/install-inspector`, which `.ci/run` runs before the tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.interop import INSPECTOR_DIR, INSPECTOR_VERSION, INSTALL_HINT, Inspector, find_inspector
from tests.support.serve import Serve


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """A real `mailgate serve` on free ports, shared by every interop test (starting one costs seconds)."""
    serve = Serve(tmp_path_factory.mktemp("interop") / "data")
    serve.data_dir.mkdir()
    serve.start()
    yield serve
    serve.stop()
    with contextlib.suppress(OSError, ValueError, KeyError):
        os.kill(serve.temporal_pid(), signal.SIGKILL)


@pytest.fixture(scope="session")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> Inspector:
    found = find_inspector()
    if found is None:
        message = f"MCP Inspector CLI not found in {INSPECTOR_DIR}: {INSTALL_HINT}"
        # CI must prove interop, so a missing client is a failure there, not a quiet skip.
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    node, launcher = found
    version = subprocess.run(
        [str(node), str(launcher), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert version.stdout.strip() == INSPECTOR_VERSION, (
        f"expected mcp-inspector {INSPECTOR_VERSION}, got {version.stdout.strip() or version.stderr.strip()}: "
        + INSTALL_HINT
    )
    return Inspector(node, launcher, tmp_path_factory.mktemp("inspector-home"))
