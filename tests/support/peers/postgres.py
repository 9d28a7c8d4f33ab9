"""A throw-away PostgreSQL for tests: Debian's server binaries, ``initdb``/``pg_ctl`` into a
temporary directory, run as the unprivileged ``postgres`` user (initdb refuses root), on a
free loopback port with a Unix socket in the same directory. Never the system instance."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port

USER = "postgres"


def server_bin() -> Path | None:
    """Debian's newest installed server binaries (``/usr/lib/postgresql/<v>/bin``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _as_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", USER, "--", *args]


def postgres_available() -> str | None:
    """None when a server can be started here, else why not."""
    if server_bin() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing: root cannot run initdb"
    return None


@dataclass
class Postgres:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A fresh, empty database on this server; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        _psql(self, f"CREATE DATABASE {name}")
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        bin_dir = server_bin()
        assert bin_dir is not None
        subprocess.run(
            _as_user([str(bin_dir / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def _psql(server: Postgres, sql: str) -> None:
    import psycopg

    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.encode())


def start_postgres() -> Postgres:
    bin_dir = server_bin()
    assert bin_dir is not None
    # Not pytest's tmp dir: its parents are 0700 root, which the postgres user cannot enter.
    directory = Path(tempfile.mkdtemp(prefix="mailgate-pg-"))
    directory.chmod(0o755)
    shutil.chown(directory, USER, USER) if os.geteuid() == 0 else None
    data = directory / "data"
    port = free_port()
    subprocess.run(
        _as_user([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    options = f"-h 127.0.0.1 -p {port} -k {directory} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(directory / "log"), "-o", options, "-w", "start"]
    subprocess.run(
        _as_user(start),
        check=True,
        capture_output=True,
    )
    return Postgres(directory, port)
