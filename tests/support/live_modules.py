"""What a running process has imported: `sys.modules` read from the live process, not guessed
from an import in the test's own interpreter (a module imported lazily, while serving, counts).

A process started with `live_modules_env(directory)` in its environment (its children inherit it)
loads the `sitecustomize` written there, which writes the process's `sys.modules` to
`<directory>/<pid>.modules` when it gets SIGUSR2. Nothing in mailgate changes for this."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.support.wait import eventually

SITECUSTOMIZE = """\
import os
import signal
import sys


def _write_modules(signum, frame):
    path = os.path.join(os.environ["LIVE_MODULES_DIR"], f"{os.getpid()}.modules")
    with open(path + ".part", "w") as out:
        out.write("\\n".join(sorted(sys.modules)))
    os.replace(path + ".part", path)


signal.signal(signal.SIGUSR2, _write_modules)
"""


def live_modules_env(directory: Path) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.environ.get("PYTHONPATH")
    return {
        "LIVE_MODULES_DIR": str(directory),
        "PYTHONPATH": os.pathsep.join([str(directory), *([path] if path else [])]),
    }


async def live_modules(pid: int, directory: Path) -> set[str]:
    """The modules process ``pid`` (started with `live_modules_env(directory)`) has loaded now."""
    written = directory / f"{pid}.modules"
    written.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR2)
    await eventually(written.exists, timeout=30)
    return set(written.read_text().split())


def among(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The modules that are one of ``packages`` or inside one."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))
